//! Prepares `benches/serve-load.sh`: the policies, configuration and request bodies of a
//! `claimgate serve` load run, and the physical limit it is compared with (ring's RS256
//! verifications per second on one core, on the same token).
//!
//! Usage: serve_load_setup DIR PORT
//! Writes DIR/policies/load.cg, DIR/policies/keys.json (key k1), DIR/keys-rotated.json (k1 and
//! k2), DIR/serve.toml, DIR/bodies/*.json and DIR/limit.json.

use std::path::Path;
use std::time::{Duration, Instant};

use claimgate_jose::b64;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair};
use serde_json::{Value, json};

const K1: &[u8] = include_bytes!("../../../crates/claimgate-jose/tests/keys/rsa2048.pk8");
const K2: &[u8] = include_bytes!("../../../crates/claimgate/tests/keys/rsa-2.der");

fn jwk(pair: &RsaKeyPair, kid: &str) -> Value {
    let c: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
    json!({ "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64::encode(&c.n), "e": b64::encode(&c.e) })
}

fn sign(pair: &RsaKeyPair, kid: &str, claims: &Value) -> (String, Vec<u8>, Vec<u8>) {
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
    let input =
        format!("{}.{}", b64::encode(header.to_string().as_bytes()), b64::encode(claims.to_string().as_bytes()));
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
    (format!("{input}.{}", b64::encode(&sig)), input.into_bytes(), sig)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: serve_load_setup DIR PORT"));
    let port: u16 = args.next().expect("usage: serve_load_setup DIR PORT").parse().unwrap();
    let k1 = RsaKeyPair::from_pkcs8(K1).unwrap();
    let k2 = RsaKeyPair::from_der(K2).unwrap();

    write(&dir.join("policies/keys.json"), &json!({ "keys": [jwk(&k1, "k1")] }).to_string());
    write(&dir.join("keys-rotated.json"), &json!({ "keys": [jwk(&k2, "k2"), jwk(&k1, "k1")] }).to_string());
    write(
        &dir.join("policies/load.cg"),
        r#"provider ci {
  issuer = "https://ci.example"
  keys {
    jwks_file = "keys.json"
  }
  algorithms = [RS256]
  required_time_claims = [exp, iat]
  # Every role of the provider: the conditions of the measured logins.
  require {
    claims.project == "app"
    claims.ref == "refs/heads/main"
  }
}

role deploy {
  provider = ci
  audience = "load"
  identity = "host/jwt-apps/" + claims.project
  policies = ["deploy"]
  token {
    ttl = 1h
  }
}

# The same login making Vault batch tokens: sealed, never written to the store.
role deploy-batch {
  provider = ci
  audience = "load"
  identity = "host/jwt-apps/" + claims.project
  policies = ["deploy"]
  token {
    ttl = 1h
    type = batch
  }
}
"#,
    );
    write(
        &dir.join("serve.toml"),
        &format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\naccounts = [\"load\"]\n\n[limits]\n\
             # Every request verifies its signature: no verified-token cache.\nverified_token_cache = 0\n\
             # The load comes from one address, most of it refused on purpose.\nfailed_logins_per_minute = 4000000000\n"
        ),
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = |aud: &str| {
        json!({
            "iss": "https://ci.example", "sub": "project_path:app:ref_type:branch:ref:main", "aud": aud,
            "project": "app", "ref": "refs/heads/main", "pipeline_id": "123456",
            "iat": now, "exp": now + 6 * 3600,
        })
    };
    let (valid, input, sig) = sign(&k1, "k1", &claims("load"));
    let (wrong_audience, _, _) = sign(&k1, "k1", &claims("elsewhere"));
    let (rotated, _, _) = sign(&k2, "k2", &claims("load"));
    let mut forged = valid.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'Q' } else { 'A' });
    let vault = |jwt: &str| json!({ "role": "deploy", "jwt": jwt }).to_string();
    write(&dir.join("bodies/vault-valid.json"), &vault(&valid));
    write(&dir.join("bodies/vault-batch-valid.json"), &json!({ "role": "deploy-batch", "jwt": valid }).to_string());
    write(&dir.join("bodies/vault-forged.json"), &vault(&forged));
    write(&dir.join("bodies/vault-wrong-audience.json"), &vault(&wrong_audience));
    write(&dir.join("bodies/vault-rotated.json"), &vault(&rotated));
    write(&dir.join("bodies/conjur-valid.form"), &format!("jwt={valid}"));
    write(
        &dir.join("bodies/strongbox-valid.json"),
        &json!({ "provider": "ci", "role": "deploy", "jwt": valid }).to_string(),
    );

    // The physical limit: ring's RS256 verify of this very token, one core, for 3 seconds.
    let public = k1.public().as_ref().to_vec();
    let key = signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        for _ in 0..100 {
            key.verify(&input, &sig).unwrap();
        }
        n += 100;
    }
    let per_sec = n as f64 / started.elapsed().as_secs_f64();
    // What a Conjur login adds on top of the verify: the server's Ed25519 signature of its own
    // token (a signing input of the size the server signs), one core, for 1 second.
    let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let ed = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let conjur_input = vec![b'e'; 190];
    let started = Instant::now();
    let mut signed = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            std::hint::black_box(ed.sign(std::hint::black_box(&conjur_input)));
        }
        signed += 100;
    }
    let sign_per_sec = signed as f64 / started.elapsed().as_secs_f64();
    write(
        &dir.join("limit.json"),
        &json!({
            "ring_rs256_verify_per_sec_one_core": per_sec.round(),
            "ring_ed25519_sign_per_sec_one_core": sign_per_sec.round(),
            "token_bytes": valid.len(),
        })
        .to_string(),
    );
    println!(
        "ring RS256 verify, one core: {per_sec:.0}/s; token {} bytes; ring Ed25519 sign (a Conjur login's token): {sign_per_sec:.0}/s",
        valid.len()
    );
}
