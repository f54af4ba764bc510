//! Shared inputs for the benchmarks (generated policy sets, tokens).
