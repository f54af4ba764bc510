//! Generators of policies and claims for property tests (shared by the VM-vs-reference and the
//! deny-by-default properties).
#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{Value, json};

pub const PATHS: &[&str] =
    &["claims.a", "claims.b", "claims.n", "claims.list", "claims.obj.x", "claims.\"k.y\"", "claims.list[0]"];

pub fn literal() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["\"x\"", "\"y\"", "\"\"", "1", "2.5", "0", "-3", "true", "false", "\"1\""])
        .prop_map(str::to_string)
}

pub fn literal_list() -> impl Strategy<Value = String> {
    prop::collection::vec(literal(), 1..4).prop_map(|items| format!("[{}]", items.join(", ")))
}

pub fn comparison() -> impl Strategy<Value = String> {
    let path = prop::sample::select(PATHS.to_vec());
    let number = prop::sample::select(vec!["0", "1", "2.5", "-3", "100"]);
    let op = prop_oneof![
        literal().prop_map(|l| format!("== {l}")),
        literal().prop_map(|l| format!("!= {l}")),
        (prop::sample::select(vec!["<", "<=", ">", ">="]), number).prop_map(|(o, n)| format!("{o} {n}")),
        literal_list().prop_map(|l| format!("in {l}")),
        prop::sample::select(vec![
            "glob \"x*\"",
            "glob \"?\"",
            "glob \"*\"",
            "glob \"\"",
            "matches \"x.*\"",
            "matches \"[0-9]+\""
        ])
        .prop_map(str::to_string),
        literal().prop_map(|l| format!("contains {l}")),
        literal_list().prop_map(|l| format!("contains any {l}")),
        literal_list().prop_map(|l| format!("contains all {l}")),
        Just("exists".to_string()),
        Just("absent".to_string()),
    ];
    (path, op).prop_map(|(path, op)| format!("{path} {op}"))
}

pub fn condition() -> impl Strategy<Value = String> {
    comparison().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (prop::sample::select(vec!["any", "all"]), prop::collection::vec(inner.clone(), 1..4))
                .prop_map(|(kind, items)| format!("{kind} {{\n{}\n}}", items.join("\n"))),
            inner.prop_filter_map("no double negation", |c| (!c.starts_with("not ")).then(|| format!("not {c}"))),
        ]
    })
}

pub fn role(index: usize) -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["any", "\"aud1\"", "[\"aud1\", \"aud2\"]", "\"aud2\""]),
        prop::collection::vec(condition(), 0..3),
        prop::sample::select(vec!["", "identity = \"id/\" + claims.a", "identity = claims.b"]),
        prop::sample::select(vec!["", "metadata {\n m = claims.n\n}", "metadata {\n m = optional claims.b\n}"]),
        prop::sample::select(vec!["", "policies = [\"p\"] + claims.list", "policies = [\"p\", \"q\"]", "policies = [\"p\"] + optional claims.n"]),
        prop::sample::select(vec!["", "groups = claims.list", "user = claims.a"]),
    )
        .prop_map(move |(audience, conditions, identity, metadata, policies, extra)| {
            let require = if conditions.is_empty() { String::new() } else { format!("require {{\n{}\n}}", conditions.join("\n")) };
            format!(
                "role r{index} {{\n provider = p\n audience = {audience}\n {require}\n {identity}\n {metadata}\n {policies}\n {extra}\n}}\n"
            )
        })
}

pub fn policy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["[]", "[exp]", "[exp, iat]", "[exp, nbf, iat]"]),
        prop::sample::select(vec!["0s", "60s"]),
        prop::sample::select(vec!["", "max_token_age = 10m", "max_lifetime = 1h"]),
        prop::collection::vec(0..1usize, 1..5),
    )
        .prop_flat_map(|(required, skew, extra, roles)| {
            let roles: Vec<_> = (0..roles.len()).map(role).collect();
            (Just((required, skew, extra)), roles)
        })
        .prop_map(|((required, skew, extra), roles)| {
            format!(
                "provider p {{\n issuer = \"https://i.example.com\"\n keys {{\n jwks_url = \"https://i.example.com/k\"\n }}\n required_time_claims = {required}\n clock_skew = {skew}\n {extra}\n}}\n\n{}",
                roles.join("\n")
            )
        })
}

pub fn scalar_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["x", "y", "", "xy", "1", "x1"]).prop_map(|s| json!(s)),
        prop::sample::select(vec![0i64, 1, -3, 100]).prop_map(|n| json!(n)),
        prop::sample::select(vec![2.5f64, 1.0, 99.5]).prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
    ]
}

pub fn claim_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar_value(),
        1 => Just(Value::Null),
        2 => prop::collection::vec(scalar_value(), 0..4).prop_map(Value::Array),
        1 => scalar_value().prop_map(|v| json!({ "x": v })),
        1 => Just(json!([[1], {"x": 1}])),
    ]
}

pub fn time_value(around: i64) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        24 => (-120i64..120).prop_map(move |d| Some(json!(around + d))),
        2 => Just(None),
        1 => Just(Some(json!("soon"))),
        1 => Just(Some(json!((around as f64) + 0.5))),
    ]
}

pub fn claims() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    (
        prop_oneof![
            8 => Just(Some("https://i.example.com")),
            1 => Just(Some("https://other.example.com")),
            1 => Just(None),
        ],
        prop_oneof![
            3 => Just(Some(json!("aud1"))),
            3 => Just(Some(json!(["aud2", "zzz"]))),
            1 => Just(Some(json!("zzz"))),
            1 => Just(None),
            1 => Just(Some(json!(5))),
        ],
        time_value(1_000 + 600),
        time_value(1_000 - 200),
        time_value(1_000 - 300),
        prop::collection::vec(
            (prop::sample::select(vec!["a", "b", "n", "list", "obj", "k.y", "sub"]), claim_value()),
            2..9,
        ),
        prop::option::weighted(0.8, Just("subject")),
    )
        .prop_map(|(iss, aud, exp, nbf, iat, others, sub)| {
            let mut map = serde_json::Map::new();
            if let Some(sub) = sub {
                map.insert("sub".into(), json!(sub));
            }
            for (key, value) in others {
                map.insert(key.to_string(), value);
            }
            if let Some(iss) = iss {
                map.insert("iss".into(), json!(iss));
            }
            for (key, value) in [("aud", aud), ("exp", exp), ("nbf", nbf), ("iat", iat)] {
                if let Some(value) = value {
                    map.insert(key.into(), value);
                }
            }
            map
        })
}
