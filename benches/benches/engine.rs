//! The engine's whole path for RS256 tokens of ~680 bytes (the fewest claims the role accepts)
//! and ~900 bytes (a realistic GitHub Actions claim set), with the provider's keys cached:
//!
//! - `ring floor`: ring's bare `UnparsedPublicKey::verify` of the same signing input and
//!   signature, already decoded (no parsing, no claims, no policy);
//! - `engine`: `Engine::authenticate` (the token split and decoded, the payload parsed once, the
//!   provider chosen by its issuer, the signature verified with that provider's keys, the role
//!   decided, the grant built), driven by a current-thread Tokio runtime;
//! - `engine, verified-token cache`: the same token presented again with the cache on (the
//!   signature is not verified again; time claims, audience and conditions are);
//! - `decide_token`: the language crate's `Program::decide_token` alone, without the engine.
//!
//! Goals (issue 12): `engine` within 1.1x of the ring floor; the cached path under 2 µs.
//!
//! Run: cargo bench -p claimgate-benches --bench engine -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use claimgate::{Options, ProviderKeys, Scratch};
use claimgate_benches::tokens::{self, NOW, PROVIDER, ROLE};
use claimgate_engine::{AuthRequest, Engine, PolicySource};
use claimgate_jose::{Algorithm, KeySet};
use criterion::{Criterion, criterion_group, criterion_main};
use ring::signature;

/// The benchmark policy with the key inline, so that the engine needs no network.
fn policy(jwk: &serde_json::Value) -> PolicySource {
    let keys = format!("jwk = \"\"\"{jwk}\"\"\"");
    let text =
        tokens::POLICY.replace("jwks_url = \"https://token.actions.githubusercontent.com/.well-known/jwks\"", &keys);
    assert_ne!(text, tokens::POLICY, "the key source was replaced");
    PolicySource::text([("engine.cg", text)])
}

fn bench_engine(c: &mut Criterion) {
    // The smallest token the role accepts (~680 bytes) and a realistic GitHub one (~900).
    for claims in [tokens::SMALL_CLAIMS, tokens::CLAIMS] {
        bench_token(c, &tokens::signed_claims(Algorithm::RS256, claims));
    }
}

fn bench_token(c: &mut Criterion, t: &tokens::SignedToken) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    eprintln!("engine: RS256 token of {} bytes", t.token.len());
    let (engine, cached) = runtime.block_on(async {
        let engine = Engine::builder(policy(&t.jwk)).build().await.unwrap();
        let cached = Engine::builder(policy(&t.jwk)).verified_token_cache(10_000, 16 << 20).build().await.unwrap();
        (engine, cached)
    });
    let request = || AuthRequest::new(&t.token).role(ROLE).now(NOW);
    // Same decisions first: allowed by both, a tampered token refused.
    let grant = runtime.block_on(engine.authenticate(request())).expect("allowed");
    assert_eq!(grant.identity(), "github/claimgate/claimgate");
    assert!(runtime.block_on(cached.authenticate(request())).is_ok());
    let mut bad = t.token.clone().into_bytes();
    let at = bad.len() - 10;
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    assert!(runtime.block_on(engine.authenticate(AuthRequest::new(&bad).role(ROLE).now(NOW))).is_err());
    let floor_key = signature::UnparsedPublicKey::new(t.ring_alg, &t.public_key);
    floor_key.verify(&t.signing_input, &t.signature).expect("ring verifies");

    let program = engine.with_program(|p| claimgate::Program::from_bytes(&p.to_bytes()).unwrap());
    let mut keys = ProviderKeys::new();
    keys.insert(PROVIDER, KeySet::from_jwk_json(t.jwk.to_string().as_bytes()).unwrap());
    let mut scratch = Scratch::default();

    let mut group = c.benchmark_group(format!("engine/RS256 {} B", t.token.len()));
    group.bench_function("ring floor", |b| {
        b.iter(|| floor_key.verify(black_box(&t.signing_input), black_box(&t.signature)))
    });
    group.bench_function("engine", |b| b.iter(|| runtime.block_on(engine.authenticate(black_box(request()))).is_ok()));
    group.bench_function("engine, verified-token cache", |b| {
        b.iter(|| runtime.block_on(cached.authenticate(black_box(request()))).is_ok())
    });
    group.bench_function("decide_token", |b| {
        b.iter(|| {
            program
                .decide_token(black_box(t.token.as_bytes()), &keys, Some(ROLE), NOW, &Options::default(), &mut scratch)
                .evaluation()
                .decision()
                .is_allow()
        })
    });
    group.finish();
    assert!(cached.metrics().cache_hits > 0);
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
