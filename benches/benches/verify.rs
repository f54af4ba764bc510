//! Signature verification alone: claimgate's `Verifier::verify` against the floor (ring's bare
//! `UnparsedPublicKey::verify` on the same signing input and signature, base64 decoding done
//! outside the timed loop). The whole path (signature, then claims) and the comparison with
//! jsonwebtoken are in `full_path.rs`.
//!
//! Tokens carry a workload-identity-sized claims set (~600 bytes for ES256; RSA tokens are longer
//! by their 256-byte signature): see `claimgate_benches::tokens`.
//!
//! Run: cargo bench -p claimgate-benches --bench verify -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use claimgate_benches::tokens::{self, ALGORITHMS};
use claimgate_jose::{AlgorithmSet, KeySet, Verifier};
use criterion::{Criterion, criterion_group, criterion_main};
use ring::signature;

fn bench_verify(c: &mut Criterion) {
    for alg in ALGORITHMS {
        let case = tokens::signed(alg);
        let keys = KeySet::from_jwk_json(case.jwk.to_string().as_bytes()).unwrap();
        let verifier = Verifier::new(keys, AlgorithmSet::ALL);
        verifier.verify(case.token.as_bytes()).expect("claimgate verifies");
        let floor_key = signature::UnparsedPublicKey::new(case.ring_alg, &case.public_key);
        floor_key.verify(&case.signing_input, &case.signature).expect("ring verifies");

        let mut group = c.benchmark_group(format!("verify/{}", case.alg.name()));
        group.bench_function(format!("claimgate ({} B token)", case.token.len()), |b| {
            b.iter(|| verifier.verify(black_box(case.token.as_bytes())).unwrap())
        });
        group.bench_function("ring floor", |b| {
            b.iter(|| floor_key.verify(black_box(&case.signing_input), black_box(&case.signature)).unwrap())
        });
        // The non-cryptographic part of claimgate's work, for reference.
        let limits = claimgate_jose::Limits::default();
        let token_str = case.token.as_str();
        group.bench_function("claimgate decode only (no crypto)", |b| {
            b.iter(|| claimgate_jose::decode_unverified(black_box(token_str), &limits).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
