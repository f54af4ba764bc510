//! `claimgate decode` and `claimgate verify`: looking at tokens with the signature core.

use std::path::Path;
use std::process::ExitCode;

use claimgate_jose::{AlgorithmSet, JoseError, KeySet, Limits, Verifier, b64, json};
use serde_json::{Value, json};

use crate::{Format, UsageError};

/// Reads the token from the argument, or from standard input for `-` or no argument. Surrounding
/// white space (a trailing newline from `echo`) is not part of a token.
pub(crate) fn read_token(token: Option<&str>) -> Result<String, UsageError> {
    let text = match token {
        Some(t) if t != "-" => t.to_string(),
        _ => {
            // Room for the largest token and the white space around it; the token's own bound is
            // applied after trimming, so its message gives the token's true size.
            let bytes = claimgate_engine::read_bounded(std::path::Path::new("-"), MAX_TOKEN_INPUT)
                .map_err(|e| UsageError(format!("the token: {e}")))?;
            String::from_utf8(bytes).map_err(|_| UsageError("the token is not UTF-8 text".to_string()))?
        }
    };
    Ok(text.trim_matches(|c: char| c.is_ascii_whitespace()).to_string())
}

/// The most standard input read for a token.
const MAX_TOKEN_INPUT: u64 = 4 * Limits::DEFAULT.max_token_bytes as u64;

/// A base64url segment decoded and shown as JSON, or as a description of why it cannot be.
fn segment_json(segment: &str) -> Result<Value, String> {
    let bytes = b64::decode(segment.as_bytes()).map_err(|_| "not strict base64url".to_string())?;
    json::parse_value(&bytes, 64).map_err(|e| format!("not JSON: {e}"))
}

pub(crate) fn decode(token: Option<&str>) -> Result<ExitCode, UsageError> {
    let token = read_token(token)?;
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() < 2 {
        eprintln!("error: not a compact JWS: expected segments separated by `.`");
        return Ok(ExitCode::from(1));
    }
    let header = segment_json(segments[0]);
    let payload = segment_json(segments[1]);
    // The same structural and header rules `verify` applies, so the output says whether the
    // token could verify at all before any key is involved.
    let structure = match claimgate_jose::decode_unverified(&token, &Limits::DEFAULT) {
        Ok(_) => json!("ok"),
        Err(error) => json!({ "code": error.code(), "message": error.to_string() }),
    };
    let shown = |part: &Result<Value, String>| match part {
        Ok(value) => value.clone(),
        Err(problem) => json!({ "error": problem }),
    };
    let out = json!({
        "signature_verified": false,
        "header": shown(&header),
        "payload": shown(&payload),
        "structure": structure,
    });
    out!("{}", crate::output::json(&out));
    eprintln!("note: decoded only; the signature was not verified (use `claimgate verify --keys FILE`)");
    // Exit 1 when the token is not a well-formed compact JWS at all; a token that decodes but
    // that `verify` would refuse for its algorithm is shown with exit 0 (the output says why).
    let malformed = matches!(out["structure"]["code"].as_str(), Some("malformed" | "too_large" | "unsupported"));
    let well_formed = header.is_ok() && payload.is_ok() && !malformed;
    Ok(if well_formed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn verify(
    keys: &Path,
    algorithms: &[String],
    token: Option<&str>,
    format: Format,
) -> Result<ExitCode, UsageError> {
    let key_bytes = claimgate_engine::read_bounded(keys, claimgate_jose::KeyLimits::default().max_bytes as u64)
        .map_err(UsageError)?;
    let key_set = KeySet::from_any(&key_bytes)
        .map_err(|e| UsageError(format!("`{}` holds no usable key: {e}", keys.display())))?;
    for skipped in key_set.skipped() {
        eprintln!("warning: {}: skipped {skipped}", keys.display());
    }
    let mut allowed = AlgorithmSet::default();
    if !algorithms.is_empty() {
        allowed = AlgorithmSet::EMPTY;
        for name in algorithms {
            let alg = name.parse().map_err(|e| UsageError(format!("--alg {name}: {e}")))?;
            allowed.insert(alg);
        }
    }
    let token = read_token(token)?;
    let verifier = Verifier::new(key_set, allowed);
    let result = verifier.verify(token.as_bytes()).and_then(|verified| {
        claimgate_jose::check_payload_json(&verified.payload, verifier.limits()).map(|claims| (verified, claims))
    });
    match result {
        Ok((verified, claims)) => {
            let header = token.split('.').next().map(segment_json).and_then(Result::ok).unwrap_or(Value::Null);
            let out = json!({
                "verified": true,
                "header": header,
                "payload": Value::Object(claims),
                "key": { "index": verified.key.index, "kid": verified.key.kid },
            });
            out!("{}", crate::output::json(&out));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            refused(&error, format);
            Ok(ExitCode::from(1))
        }
    }
}

fn refused(error: &JoseError, format: Format) {
    match format {
        Format::Human => eprintln!("error[{}]: token refused: {error}", error.code()),
        Format::Json => {
            let out = json!({ "verified": false, "code": error.code(), "message": error.to_string() });
            out!("{}", crate::output::json(&out));
        }
    }
}
