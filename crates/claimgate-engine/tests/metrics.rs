//! The counters through the `metrics` facade (feature `metrics`), read back with
//! metrics-util's debugging recorder.

#![cfg(feature = "metrics")]

mod common;

use claimgate_engine::{AuthRequest, Engine, PolicySource};
use common::{Signer, claims, jwks};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// `(name, labels as "k=v" sorted, value)` of every counter, histograms as their sample count.
fn snapshot(recorder: &DebuggingRecorder) -> Vec<(String, Vec<String>, u64)> {
    let mut out: Vec<(String, Vec<String>, u64)> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => 0,
            };
            (key.name().to_string(), labels, value)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn decisions_fetches_and_cache_hits_are_counted_by_code_and_provider() {
    let recorder = DebuggingRecorder::new();
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new("k");
    std::fs::write(dir.path().join("k.json"), jwks(&[&signer])).unwrap();
    std::fs::write(
        dir.path().join("p.cg"),
        "provider idp {\n  issuer = \"https://idp.test\"\n  keys {\n    jwks_file = \"k.json\"\n  }\n}\n\nrole api {\n  provider = idp\n  audience = \"api\"\n  require {\n    claims.sub glob \"svc-*\"\n  }\n  identity = claims.sub\n}\n",
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let engine = Engine::builder(PolicySource::dir(dir.path()))
                .verified_token_cache(100, 1 << 20)
                .build()
                .await
                .unwrap();
            let good = signer.sign(&claims("https://idp.test", "svc-1"));
            assert!(engine.authenticate(AuthRequest::new(&good)).await.is_ok());
            assert!(engine.authenticate(AuthRequest::new(&good)).await.is_ok());
            let refused = signer.sign(&claims("https://idp.test", "root"));
            assert!(engine.authenticate(AuthRequest::new(&refused)).await.is_err());
            let stranger = signer.sign(&claims("https://elsewhere.test", "svc-1"));
            assert!(engine.authenticate(AuthRequest::new(&stranger)).await.is_err());
        })
    });
    let snapshot = snapshot(&recorder);
    let value = |name: &str, labels: &[&str]| {
        snapshot
            .iter()
            .find(|(n, l, _)| n == name && l.iter().map(String::as_str).eq(labels.iter().copied()))
            .map(|s| s.2)
    };
    assert_eq!(value("claimgate_logins_total", &["code=allow", "provider=idp"]), Some(2), "{snapshot:?}");
    assert_eq!(value("claimgate_logins_total", &["code=claim_mismatch", "provider=idp"]), Some(1), "{snapshot:?}");
    assert_eq!(value("claimgate_logins_total", &["code=unknown_issuer", "provider="]), Some(1), "{snapshot:?}");
    assert_eq!(value("claimgate_login_duration_seconds", &["provider=idp"]), Some(3), "{snapshot:?}");
    assert_eq!(value("claimgate_verified_token_cache_hits_total", &[]), Some(1), "{snapshot:?}");
}
