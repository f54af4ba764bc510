//! The whole path, signature then claims, for RS256, PS256, ES256, ES384 and EdDSA tokens of
//! about 600 bytes (`claimgate_benches::tokens`):
//!
//! - `claimgate`: `Program::decide_token`: the signature, then the decision on the verified
//!   payload for the named role (the provider's algorithms and `typ`, issuer, `exp`, audience,
//!   three conditions, the grant);
//! - `jsonwebtoken (aws_lc_rs)`: its current release's `decode` with its aws-lc-rs backend (the
//!   one a performance-minded user picks; `JWT_BACKEND=rust_crypto` runs its RustCrypto backend
//!   instead) into a typed claims struct with `Validation`
//!   of the algorithm, `iss`, `aud` and `exp`, then the same three conditions and identity as
//!   if-statements;
//! - `ring floor`: ring's bare `UnparsedPublicKey::verify` of the same signing input and
//!   signature, already base64-decoded (no parsing, no claims);
//! - `claimgate verify only` and `claimgate decide only`: the two steps of `claimgate` apart
//!   (the signature core's `Verifier::verify`, and `Program::decide` on the payload), to show
//!   where the time above the floor goes.
//!
//! Every variant must allow the token, and refuse it with one signature byte changed, before
//! anything is timed. Goal: claimgate within 1.1x of the ring floor.
//!
//! Run: cargo bench -p claimgate-benches --bench full_path -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use claimgate::Policy;
use claimgate::payload::Scratch;
use claimgate::program::Program;
use claimgate_benches::tokens::{self, ALGORITHMS, NOW, ROLE};
use std::sync::Arc;

use claimgate::vm::{Options, ProviderKeys};
use claimgate_jose::{Algorithm, AlgorithmSet, KeySet, Verifier};
use criterion::{Criterion, criterion_group, criterion_main};
use ring::signature;
use serde::Deserialize;

fn program() -> Program {
    let policy = Policy::from_sources([("full-path.cg", tokens::POLICY)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    policy.compile().unwrap()
}

fn claimgate_full(program: &Program, keys: &ProviderKeys, token: &[u8], scratch: &mut Scratch) -> bool {
    program.decide_token(token, keys, Some(ROLE), NOW, &Options::default(), scratch).evaluation().decision().is_allow()
}

/// What jsonwebtoken decodes: the claims the role reads (iss, aud and exp are validated by
/// jsonwebtoken itself).
#[derive(Deserialize)]
struct Claims {
    repository_owner: String,
    #[serde(rename = "ref")]
    git_ref: String,
    event_name: String,
    repository: String,
}

fn jsonwebtoken_full(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    validation: &jsonwebtoken::Validation,
) -> Option<String> {
    let data = jsonwebtoken::decode::<Claims>(token, key, validation).ok()?;
    let c = data.claims;
    let ok = c.repository_owner == "claimgate"
        && c.git_ref == "refs/heads/main"
        && (c.event_name == "push" || c.event_name == "workflow_dispatch");
    ok.then(|| format!("github/{}", c.repository))
}

fn jsonwebtoken_key(t: &tokens::SignedToken) -> (jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm) {
    let s = |k: &str| t.jwk[k].as_str().unwrap().to_string();
    match t.alg {
        Algorithm::RS256 => {
            (jsonwebtoken::DecodingKey::from_rsa_components(&s("n"), &s("e")).unwrap(), jsonwebtoken::Algorithm::RS256)
        }
        Algorithm::PS256 => {
            (jsonwebtoken::DecodingKey::from_rsa_components(&s("n"), &s("e")).unwrap(), jsonwebtoken::Algorithm::PS256)
        }
        Algorithm::ES256 => {
            (jsonwebtoken::DecodingKey::from_ec_components(&s("x"), &s("y")).unwrap(), jsonwebtoken::Algorithm::ES256)
        }
        Algorithm::ES384 => {
            (jsonwebtoken::DecodingKey::from_ec_components(&s("x"), &s("y")).unwrap(), jsonwebtoken::Algorithm::ES384)
        }
        Algorithm::EdDSA => {
            (jsonwebtoken::DecodingKey::from_ed_components(&s("x")).unwrap(), jsonwebtoken::Algorithm::EdDSA)
        }
        other => unreachable!("{other} is not benchmarked"),
    }
}

/// The token with one byte of its signature changed (still valid base64url).
fn tampered(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn bench_full_path(c: &mut Criterion) {
    // jsonwebtoken picks its crypto from a process-wide default: one backend per run.
    let backend = std::env::var("JWT_BACKEND").unwrap_or_else(|_| "aws_lc_rs".to_string());
    let installed = match backend.as_str() {
        "aws_lc_rs" => jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default(),
        "rust_crypto" => jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default(),
        other => panic!("JWT_BACKEND={other}: choose aws_lc_rs or rust_crypto"),
    };
    assert!(installed.is_ok(), "jsonwebtoken's backend was already chosen");
    let jsonwebtoken_label = format!("jsonwebtoken ({backend})");
    let program = program();
    let mut scratch = Scratch::default();
    for alg in ALGORITHMS {
        let t = tokens::signed(alg);
        let keys = Arc::new(KeySet::from_jwk_json(t.jwk.to_string().as_bytes()).unwrap());
        let verifier = Verifier::new(keys.clone(), AlgorithmSet::ALL);
        let mut provider_keys = ProviderKeys::new();
        provider_keys.insert(tokens::PROVIDER, keys.clone());
        let (jwt_key, jwt_alg) = jsonwebtoken_key(&t);
        let mut validation = jsonwebtoken::Validation::new(jwt_alg);
        validation.set_issuer(&["https://token.actions.githubusercontent.com"]);
        validation.set_audience(&["https://github.com/claimgate"]);
        validation.leeway = 60;
        let floor_key = signature::UnparsedPublicKey::new(t.ring_alg, &t.public_key);

        // Same decisions first: the token is allowed, a tampered one refused, by every variant.
        let bad = tampered(&t.token);
        assert!(claimgate_full(&program, &provider_keys, t.token.as_bytes(), &mut scratch), "claimgate {}", alg.name());
        assert!(!claimgate_full(&program, &provider_keys, bad.as_bytes(), &mut scratch));
        assert_eq!(jsonwebtoken_full(&t.token, &jwt_key, &validation).as_deref(), Some("github/claimgate/claimgate"));
        assert!(jsonwebtoken_full(&bad, &jwt_key, &validation).is_none());
        floor_key.verify(&t.signing_input, &t.signature).expect("ring verifies");
        let mut bad_signature = t.signature.clone();
        bad_signature[5] ^= 1;
        assert!(floor_key.verify(&t.signing_input, &bad_signature).is_err());

        let mut group = c.benchmark_group(format!("full_path/{}", alg.name()));
        eprintln!("full_path/{}: token of {} bytes", alg.name(), t.token.len());
        group.bench_function("claimgate", |b| {
            b.iter(|| claimgate_full(&program, &provider_keys, black_box(t.token.as_bytes()), &mut scratch))
        });
        group.bench_function(&jsonwebtoken_label, |b| {
            b.iter(|| jsonwebtoken_full(black_box(&t.token), &jwt_key, &validation))
        });
        group.bench_function("ring floor", |b| {
            b.iter(|| floor_key.verify(black_box(&t.signing_input), black_box(&t.signature)))
        });
        // claimgate's two steps apart, to show where the time above the floor goes.
        group.bench_function("claimgate verify only", |b| {
            b.iter(|| verifier.verify(black_box(t.token.as_bytes())).is_ok())
        });
        let payload = verifier.verify(t.token.as_bytes()).unwrap().payload;
        group.bench_function("claimgate decide only", |b| {
            b.iter(|| program.decide(black_box(&payload), Some(ROLE), NOW, &mut scratch).is_allow())
        });
        group.finish();
    }
}

criterion_group!(benches, bench_full_path);
criterion_main!(benches);
