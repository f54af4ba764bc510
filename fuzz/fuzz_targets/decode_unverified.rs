//! Decoding without verification, and the claims check: never a panic, and `decode_unverified`
//! applies exactly the structural and header rules of `Verifier::verify` (with every algorithm
//! allowed): a token it refuses, verify refuses with the same code; a token verify accepts, it
//! decodes to the same header and payload.
#![no_main]

use claimgate_fuzz::{check_jose_error, fixture};
use claimgate_jose::{Limits, check_payload_json, decode_unverified};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::DEFAULT;
    let verifier = &fixture().verifier;
    if let Ok(text) = std::str::from_utf8(data) {
        let decoded = decode_unverified(text, &limits);
        let verified = verifier.verify(data);
        match (&decoded, &verified) {
            (Err(d), Err(v)) => {
                check_jose_error(d);
                check_jose_error(v);
                assert_eq!(d.code(), v.code(), "decode refused with {d}, verify with {v}");
            }
            (Err(d), Ok(_)) => panic!("decode refused a token that verifies: {d}"),
            (Ok((header, payload)), Ok(v)) => {
                assert_eq!(header, &v.header);
                assert_eq!(payload, &v.payload);
            }
            (Ok(_), Err(v)) => check_jose_error(v),
        }
        if let Ok((_, payload)) = decoded
            && let Err(e) = check_payload_json(&payload, &limits)
        {
            check_jose_error(&e);
        }
    }
    if let Err(e) = check_payload_json(data, &limits) {
        check_jose_error(&e);
    }
});
