//! Untrusted key material: every loader on arbitrary bytes. Must never panic; errors must be safe
//! to show. A key set that loads is used: the fixture's valid tokens are verified with it (their
//! outcome is not checked, only that ring is never handed something that makes it panic).
#![no_main]

use claimgate_fuzz::{check_jose_error, check_message, fixture};
use claimgate_jose::{AlgorithmSet, KeyError, KeySet, Verifier};
use libfuzzer_sys::fuzz_target;

fn exercise(loaded: Result<KeySet, KeyError>) {
    match loaded {
        Err(error) => {
            assert!(!error.code().is_empty());
            check_message(&error.to_string(), 2048);
        }
        Ok(keys) => {
            assert!(!keys.is_empty(), "a key set that loads has a usable key");
            assert_eq!(keys.iter().count(), keys.len());
            for skipped in keys.skipped() {
                check_message(&skipped.to_string(), 2048);
            }
            let verifier = Verifier::new(keys, AlgorithmSet::ALL);
            for original in &fixture().originals {
                if let Err(error) = verifier.verify(original.token.as_bytes()) {
                    check_jose_error(&error);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = fixture();
    exercise(KeySet::from_jwks_json(data));
    exercise(KeySet::from_jwk_json(data));
    exercise(KeySet::from_any(data));
    if let Ok(text) = std::str::from_utf8(data) {
        exercise(KeySet::from_pem(text));
    }
});
