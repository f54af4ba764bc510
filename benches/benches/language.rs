//! The policy language front end: parsing plus checking a large policy set, and formatting it.
//!
//! Goal (issue: the policy language): parse + check 10,000 roles in under 100 ms on one core.
//! Two role shapes are measured (see `RoleShape`): typical roles and rich ones. The retained
//! memory of a loaded set is measured with a counting allocator and printed once before the
//! timings, so that the figures come from the same run.

use claimgate::parser::{self, Limits};
use claimgate::{FileId, Policy};
use claimgate_benches::{RoleShape, generated_policy_set};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[global_allocator]
static ALLOCATOR: claimgate_benches::CountingAllocator = claimgate_benches::CountingAllocator;

fn report_memory(roles: usize, shape: RoleShape) {
    let text = generated_policy_set(roles, 100, shape);
    let before = claimgate_benches::live_bytes();
    let policy = Policy::from_sources([("generated.cg", text.as_str())]);
    let after = claimgate_benches::live_bytes();
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let retained = after - before;
    eprintln!(
        "memory: {roles} {shape:?} roles, source {} bytes; loaded policy (source copy, checked set) retains {} bytes ({} bytes per role)",
        text.len(),
        retained,
        retained / roles as isize
    );
    drop(policy);
}

fn parse_and_check(c: &mut Criterion) {
    for shape in [RoleShape::Typical, RoleShape::Rich] {
        report_memory(10_000, shape);
        let mut group = c.benchmark_group(format!("language/parse_check/{shape:?}"));
        group.sample_size(10);
        for roles in [100, 1_000, 10_000] {
            let text = generated_policy_set(roles, 100, shape);
            group.throughput(Throughput::Bytes(text.len() as u64));
            // Freeing the loaded set is not part of loading it: criterion drops outputs untimed.
            group.bench_with_input(BenchmarkId::from_parameter(roles), &text, |b, text| {
                b.iter_with_large_drop(|| {
                    let policy = Policy::from_sources([("generated.cg", text.as_str())]);
                    assert!(!policy.has_errors());
                    policy
                })
            });
        }
        group.finish();
    }
}

fn format(c: &mut Criterion) {
    let text = generated_policy_set(10_000, 100, RoleShape::Rich);
    let parsed = parser::parse(FileId(0), &text, &Limits::default());
    let mut group = c.benchmark_group("language/format");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("10000", |b| b.iter(|| claimgate::fmt::format_file(&parsed.ast, &text)));
    group.finish();
}

criterion_group!(benches, parse_and_check, format);
criterion_main!(benches);
