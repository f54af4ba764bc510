//! The Vault endpoints over HTTP: login, lookup-self, renew-self, revoke-self, use counts, batch
//! tokens, bound CIDRs, and the answers to bad requests.

mod common;

use serde_json::{Value, json};

async fn login(h: &common::Harness, mount: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = h.client.post(h.url(&format!("/v1/auth/{mount}/login"))).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

async fn token_call(
    h: &common::Harness,
    method: reqwest::Method,
    op: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = h.client.request(method, h.url(&format!("/v1/auth/token/{op}"))).header("X-Vault-Token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_login_returns_vaults_auth_object_and_the_token_works_until_revoked() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job-1", "project": "app" }));
    let (status, body, headers) = login(&h, "ci", json!({ "role": "deploy", "jwt": jwt })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    let auth = &body["auth"];
    let token = auth["client_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("hvs.") && token.len() == 47, "{token}");
    assert_eq!(auth["accessor"].as_str().unwrap().len(), 24);
    assert_eq!(auth["policies"], json!(["ci-base", "default", "deployer"]));
    assert_eq!(auth["token_policies"], auth["policies"]);
    assert_eq!(auth["metadata"], json!({ "project": "app", "role": "deploy" }));
    assert_eq!(auth["lease_duration"], 900);
    assert_eq!(
        (auth["renewable"].clone(), auth["token_type"].clone(), auth["num_uses"].clone()),
        (json!(true), json!("service"), json!(0))
    );
    assert_eq!(
        (body["lease_duration"].clone(), body["renewable"].clone(), body["mount_type"].clone()),
        (json!(0), json!(false), json!("jwt"))
    );

    let (status, looked) = token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await;
    assert_eq!(status, 200, "{looked}");
    let data = &looked["data"];
    assert_eq!(data["id"], token.as_str());
    assert_eq!(data["accessor"], auth["accessor"]);
    assert_eq!(data["display_name"], "ci-host/jwt-apps/app");
    assert_eq!(data["path"], "auth/ci/login");
    assert_eq!(data["creation_ttl"], 900);
    assert!(data["ttl"].as_i64().unwrap() > 890);
    assert_eq!(data["meta"], auth["metadata"]);
    assert_eq!(data["type"], "service");

    // Renewal counts from now: an increment shortens, the role's max_ttl caps with a warning.
    let (status, renewed) =
        token_call(&h, reqwest::Method::POST, "renew-self", &token, Some(json!({ "increment": "2m" }))).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["auth"]["lease_duration"], 120);
    assert_eq!(renewed["auth"]["client_token"], token.as_str());
    let (status, renewed) =
        token_call(&h, reqwest::Method::POST, "renew-self", &token, Some(json!({ "increment": 7200 }))).await;
    assert_eq!(status, 200);
    let capped = renewed["auth"]["lease_duration"].as_i64().unwrap();
    assert!((3590..=3600).contains(&capped), "{renewed}");
    assert!(renewed["warnings"][0].as_str().unwrap().contains("capped"), "{renewed}");
    let (_, looked) = token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await;
    assert!(looked["data"]["last_renewal_time"].is_i64(), "{looked}");

    let revoked =
        h.client.post(h.url("/v1/auth/token/revoke-self")).header("X-Vault-Token", &token).send().await.unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(revoked.headers()["content-type"], "application/json", "as Vault's 204");
    assert_eq!(revoked.headers()["cache-control"], "no-store");
    for op in ["lookup-self", "renew-self", "revoke-self"] {
        let method = if op == "lookup-self" { reqwest::Method::GET } else { reqwest::Method::POST };
        let (status, body) = token_call(&h, method, op, &token, None).await;
        assert_eq!((status, body), (403, json!({ "errors": ["permission denied"] })), "{op} after revocation");
    }
    h.stop().await;
}

#[tokio::test]
async fn role_null_selects_the_role_and_every_request_counts_against_num_uses() {
    let h = common::start("").await;
    // hvac sends `"role": null` when no role is given: automatic selection.
    let jwt = h.ci.token(json!({ "aud": "limited", "sub": "svc" }));
    let (status, body, _) = login(&h, "ci", json!({ "role": null, "jwt": jwt })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["num_uses"], 5);
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let mut shown = Vec::new();
    for _ in 0..5 {
        let (status, looked) = token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await;
        assert_eq!(status, 200);
        shown.push(looked["data"]["num_uses"].as_i64().unwrap());
    }
    // Vault shows the count after the request's use, and -1 on the last one.
    assert_eq!(shown, [4, 3, 2, 1, -1]);
    let (status, _) = token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await;
    assert_eq!(status, 403, "the sixth use is refused");

    // A form body, as `curl -d role=... -d jwt=...` sends it, reads as the JSON one. A renewal
    // that spends the last use finds no token to renew (Vault revokes it with that use).
    let response = h
        .client
        .post(h.url("/v1/auth/ci/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("role", "limited")
                .append_pair("jwt", &jwt)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    for _ in 0..4 {
        assert_eq!(token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await.0, 200);
    }
    let (status, body) = token_call(&h, reqwest::Method::POST, "renew-self", &token, Some(json!({}))).await;
    assert_eq!((status, body), (400, json!({ "errors": ["token not found"] })));
    assert_eq!(token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await.0, 403);
    h.stop().await;
}

#[tokio::test]
async fn batch_tokens_have_no_accessor_and_cannot_be_renewed_or_revoked() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "batch", "sub": "svc" }));
    let (status, body, _) = login(&h, "ci", json!({ "role": "batchy", "jwt": jwt })).await;
    assert_eq!(status, 200, "{body}");
    let auth = &body["auth"];
    assert_eq!(
        (auth["accessor"].clone(), auth["renewable"].clone(), auth["token_type"].clone()),
        (json!(""), json!(false), json!("batch"))
    );
    let token = auth["client_token"].as_str().unwrap();
    assert!(token.starts_with("hvb."));
    let (status, looked) = token_call(&h, reqwest::Method::GET, "lookup-self", token, None).await;
    assert_eq!((status, looked["data"]["type"].clone()), (200, json!("batch")));
    let (status, body) = token_call(&h, reqwest::Method::POST, "renew-self", token, Some(json!({}))).await;
    assert_eq!((status, body), (400, json!({ "errors": ["batch tokens cannot be renewed"] })));
    let (status, body) = token_call(&h, reqwest::Method::POST, "revoke-self", token, None).await;
    assert_eq!((status, body), (400, json!({ "errors": ["batch tokens cannot be revoked"] })));
    // As in Vault, a batch token is not stored: the token carries its own sealed record.
    let stored: i64 = rusqlite::Connection::open(h.dir.path().join("data/claimgate.sqlite3"))
        .unwrap()
        .query_row("SELECT count(*) FROM tokens", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, 0);
    // A token changed anywhere does not open; nor does one made up with the right prefix.
    let mut forged = token.to_string();
    let at = forged.len() - 10;
    let changed = if &forged[at..at + 1] == "A" { "B" } else { "A" };
    forged.replace_range(at..at + 1, changed);
    assert_eq!(token_call(&h, reqwest::Method::GET, "lookup-self", &forged, None).await.0, 403);
    assert_eq!(token_call(&h, reqwest::Method::GET, "lookup-self", "hvb.AAAA", None).await.0, 403);
    h.stop().await;
}

#[tokio::test]
async fn periodic_tokens_renew_to_their_period_under_explicit_max_ttl() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "periodic", "sub": "svc" }));
    let (status, body, _) = login(&h, "ci", json!({ "role": "periodic", "jwt": jwt })).await;
    assert_eq!((status, body["auth"]["lease_duration"].clone()), (200, json!(3600)), "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap();
    let (status, renewed) =
        token_call(&h, reqwest::Method::POST, "renew-self", token, Some(json!({ "increment": 60 }))).await;
    assert_eq!((status, renewed["auth"]["lease_duration"].clone()), (200, json!(3600)), "the increment is ignored");
    let (_, looked) = token_call(&h, reqwest::Method::GET, "lookup-self", token, None).await;
    assert_eq!(
        (looked["data"]["period"].clone(), looked["data"]["explicit_max_ttl"].clone()),
        (json!(3600), json!(7200))
    );
    h.stop().await;
}

#[tokio::test]
async fn a_period_is_cut_to_the_mounts_max_lease_ttl_with_a_warning() {
    let h = common::start("[vault]\ndefault_lease_ttl = \"30m\"\nmax_lease_ttl = \"30m\"").await;
    let jwt = h.ci.token(json!({ "aud": "periodic", "sub": "svc" }));
    let (status, body, _) = login(&h, "ci", json!({ "role": "periodic", "jwt": jwt })).await;
    assert_eq!((status, body["auth"]["lease_duration"].clone()), (200, json!(1800)), "{body}");
    assert!(body["warnings"][0].as_str().unwrap().contains("period value is capped accordingly"), "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap();
    let (status, renewed) = token_call(&h, reqwest::Method::POST, "renew-self", token, Some(json!({}))).await;
    assert_eq!((status, renewed["auth"]["lease_duration"].clone()), (200, json!(1800)), "{renewed}");
    assert_eq!(
        renewed["warnings"][0],
        r#"period of "1h" exceeded the effective max_ttl of "30m"; period value is capped accordingly"#,
        "{renewed}"
    );
    h.stop().await;
}

#[tokio::test]
async fn bound_cidrs_refuse_a_client_outside_them() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "fenced", "sub": "svc" }));
    let (status, body, _) = login(&h, "ci", json!({ "role": "fenced", "jwt": jwt })).await;
    assert_eq!((status, body), (403, json!({ "errors": ["permission denied"] })));
    assert!(h.audit().contains(r#""code":"address_not_allowed""#), "{}", h.audit());
    h.stop().await;
}

#[tokio::test]
async fn refused_logins_are_400_with_a_stable_code_and_never_leak_detail() {
    let h = common::start("[vault.mounts]\njwt = \"ci\"\n").await;
    let wrong_project = h.ci.token(json!({ "aud": "vault", "sub": "x", "project": "evil" }));
    let (status, body, _) = login(&h, "jwt", json!({ "role": "deploy", "jwt": wrong_project })).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({ "errors": ["error validating token: the token may not log in here (claim_mismatch)"] }));
    // A token of another provider, valid for its own role, is refused on this mount.
    let other = h.other.token(json!({ "aud": "x", "sub": "y" }));
    let (status, body, _) = login(&h, "jwt", json!({ "jwt": other })).await;
    assert_eq!((status, body["errors"][0].as_str().unwrap().ends_with("(issuer_mismatch)")), (400, true), "{body}");
    // A role of another provider is not one of this mount's roles, as in Vault, where each
    // mount has its own.
    let (status, body, _) = login(&h, "jwt", json!({ "role": "other-role", "jwt": other })).await;
    assert_eq!((status, body), (400, json!({ "errors": ["role \"other-role\" could not be found"] })));
    // With mounts configured, a provider is reachable only at its mount; anything else under
    // /v1/auth/ is Vault's 403.
    let (status, body, _) = login(&h, "ci", json!({ "jwt": wrong_project })).await;
    assert_eq!((status, body), (403, json!({ "errors": ["permission denied"] })));
    let (status, _, _) = login(&h, "nope", json!({ "jwt": wrong_project })).await;
    assert_eq!(status, 403);
    let (status, body, _) = login(&h, "jwt", json!({ "role": "nope", "jwt": wrong_project })).await;
    assert_eq!((status, body), (400, json!({ "errors": ["role \"nope\" could not be found"] })));
    // The role first, then the token, in Vault's order; role names are read in lower case.
    let (status, body, _) = login(&h, "jwt", json!({ "role": "nope" })).await;
    assert_eq!((status, body), (400, json!({ "errors": ["role \"nope\" could not be found"] })));
    let (status, body, _) = login(&h, "jwt", json!({ "role": "Deploy" })).await;
    assert_eq!((status, body), (400, json!({ "errors": ["missing token"] })));
    let (status, body, _) = login(&h, "jwt", json!({ "role": "deploy" })).await;
    assert_eq!((status, body), (400, json!({ "errors": ["missing token"] })));
    // Response wrapping is refused, never ignored: the client asked not to see the token.
    let response = h
        .client
        .post(h.url("/v1/auth/jwt/login"))
        .header("X-Vault-Wrap-TTL", "60s")
        .json(&json!({ "jwt": wrong_project }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "errors": ["response wrapping is not supported by this server"] })
    );
    let response = h.client.post(h.url("/v1/auth/jwt/login")).body("{\"jwt\": ").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0].as_str().unwrap().starts_with("failed to parse JSON input"), "{body}");
    let response = h.client.post(h.url("/v1/auth/jwt/login")).body(r#"{"jwt":"a","jwt":"b"}"#).send().await.unwrap();
    assert_eq!(response.status(), 400, "duplicate members are refused");
    let response = h.client.get(h.url("/v1/auth/jwt/login")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    // No token, an unknown token, a token in the wrong header form.
    let response = h.client.get(h.url("/v1/auth/token/lookup-self")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let (status, _) = token_call(&h, reqwest::Method::GET, "lookup-self", "hvs.AAAA", None).await;
    assert_eq!(status, 403);
    // Refusals never echo the token; the audit line says why, for the operator.
    assert!(!h.audit().contains(&wrong_project), "the audit log holds no token");
    let refusal: Value = h
        .audit()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["code"] == "claim_mismatch")
        .unwrap();
    let detail = refusal["detail"].as_str().unwrap();
    assert!(detail.contains(r#"[check `claims.project == "app"`] [token has "evil"]"#), "{detail}");
    h.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let h = common::start("[limits]\nmax_body_bytes = 4096\n").await;
    let body = format!(r#"{{"jwt": "{}"}}"#, "a".repeat(8192));
    let response = h.client.post(h.url("/v1/auth/ci/login")).body(body.clone()).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "errors": ["request body too large"] }));
    let response = h.client.post(h.url("/v1/jwt-login")).body(body.clone()).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "body_too_large");
    // Conjur checks the account and the service id before it reads the body, as Conjur does.
    let form = format!("jwt={}", "a".repeat(8192));
    let response = h.client.post(h.url("/authn-jwt/nope/nope/authenticate")).body(form.clone()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = h.client.post(h.url("/authn-jwt/ci/myorg/authenticate")).body(form).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.text().await.unwrap(), "");
    h.stop().await;
}

#[tokio::test]
async fn a_client_over_its_failed_login_quota_gets_429_until_it_refills() {
    let h = common::start("[limits]\nfailed_logins_per_minute = 3\n").await;
    let bad = h.ci.token(json!({ "aud": "vault", "sub": "x", "project": "evil" }));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(login(&h, "ci", json!({ "role": "deploy", "jwt": bad })).await.0);
    }
    // Three failures are within the quota; the fourth exceeds it, and from then on the address
    // is refused before any work.
    assert_eq!(statuses, [400, 400, 400, 400, 429]);
    // Even a good token waits: the address is limited, not the token.
    let good = h.ci.token(json!({ "aud": "vault", "sub": "x", "project": "app" }));
    let (status, body, _) = login(&h, "ci", json!({ "role": "deploy", "jwt": good })).await;
    assert_eq!((status, body), (429, json!({ "errors": ["too many failed logins; try again later"] })));
    assert!(h.audit().contains(r#""code":"rate_limited""#));
    // Nor can a limited client learn which roles and providers exist: the quota is checked
    // before the role (Vault) and the provider (Strongbox) are looked up.
    for role in ["no-such-role", "deploy"] {
        let (status, body, _) = login(&h, "ci", json!({ "role": role, "jwt": good })).await;
        assert_eq!((status, body), (429, json!({ "errors": ["too many failed logins; try again later"] })), "{role}");
    }
    for provider in ["no-such-provider", "ci"] {
        let request = json!({ "provider": provider, "role": "deploy", "jwt": good });
        let response = h.client.post(h.url("/v1/jwt-login")).json(&request).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 429, "{provider}");
    }
    h.stop().await;
}

#[tokio::test]
async fn mount_names_cost_quota_and_a_body_must_be_a_json_object() {
    let h = common::start("[limits]\nfailed_logins_per_minute = 5\n").await;
    let good = h.ci.token(json!({ "aud": "vault", "sub": "x", "project": "app" }));
    // A JSON array is not a request, though serde would read it into the fields by position.
    let send = |path: &str, body: String| {
        let request = h.client.post(h.url(path)).header("Content-Type", "application/json").body(body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = send("/v1/auth/ci/login", json!([null, good]).to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({ "errors": ["failed to parse JSON input: the body is not a JSON object"] }));
    let (status, body) = send("/v1/jwt-login", json!(["myorg", "ci", "deploy", good]).to_string()).await;
    assert_eq!((status, &body["error"]), (400, &json!("bad_request")), "{body}");
    // Each of these tells a mount that exists from one that does not, so each counts.
    assert_eq!(send("/v1/auth/nope/login", "{}".into()).await.0, 403);
    let get = h.client.get(h.url("/v1/auth/ci/login")).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(login(&h, "ci", json!({ "role": "deploy" })).await.1, json!({ "errors": ["missing token"] }));
    // Not a login path, not a login attempt: not counted.
    let root = h.client.get(h.url("/v1/auth/")).send().await.unwrap();
    assert_eq!(root.status().as_u16(), 403);
    assert_eq!(send("/v1/auth/nope/other", "{}".into()).await.0, 403);
    // Exactly five counted, the quota: a good login still passes.
    let (status, body, _) = login(&h, "ci", json!({ "role": "deploy", "jwt": good })).await;
    assert_eq!(status, 200, "{body}");
    // The sixth refusal exceeds it: from then on every login path answers 429, whether its
    // mount exists or not.
    assert_eq!(send("/v1/auth/nope/login", "{}".into()).await.0, 403);
    for mount in ["nope", "ci"] {
        let (status, body, _) = login(&h, mount, json!({ "role": "deploy", "jwt": good })).await;
        assert_eq!((status, body), (429, json!({ "errors": ["too many failed logins; try again later"] })), "{mount}");
    }
    let audit = h.audit();
    assert!(audit.contains(r#""code":"unknown_mount""#) && audit.contains(r#""code":"method_not_allowed""#), "{audit}");
    h.stop().await;
}

#[tokio::test]
async fn a_client_over_its_quota_gets_429_before_anything_of_its_request_is_checked_or_read() {
    let h = common::start("[limits]\nfailed_logins_per_minute = 5\nmax_body_bytes = 1024\n").await;
    let good = h.ci.token(json!({ "aud": "vault", "sub": "x", "project": "app" }));
    let wrapped = || {
        h.client
            .post(h.url("/v1/auth/ci/login"))
            .header("X-Vault-Wrap-TTL", "60s")
            .json(&json!({ "role": "deploy", "jwt": good }))
    };
    let twice = || {
        h.client
            .post(h.url("/v1/auth/ci/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("jwt={good}&jwt={good}"))
    };
    let large =
        |path: &str| h.client.post(h.url(path)).header("Content-Type", "application/json").body(" ".repeat(4096));
    let strongbox_get = || h.client.get(h.url("/v1/jwt-login"));
    let conjur_get = || h.client.get(h.url("/authn-jwt/ci/myorg/authenticate"));
    let status = |request: reqwest::RequestBuilder| async move { request.send().await.unwrap().status().as_u16() };
    // Under the quota, each is answered as itself. A body too large is not counted (it says
    // nothing of names), the other five are.
    assert_eq!(status(large("/v1/auth/ci/login")).await, 413);
    assert_eq!(status(large("/v1/jwt-login")).await, 413);
    assert_eq!(status(wrapped()).await, 400);
    assert_eq!(status(twice()).await, 400);
    let response = strongbox_get().send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "error": "method_not_allowed", "message": "log in with POST" }));
    assert_eq!(status(conjur_get()).await, 405);
    assert_eq!(status(h.client.put(h.url("/authn-jwt/ci/myorg/host%2Fapp/authenticate"))).await, 405);
    // Five counted: a good login still passes; the sixth refusal blocks.
    let (code, body, _) = login(&h, "ci", json!({ "role": "deploy", "jwt": good })).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(wrapped()).await, 400);
    // Over the quota, every one of them is 429, before its method, headers or body are looked at.
    for (path, request) in [
        ("vault wrap", wrapped()),
        ("vault form", twice()),
        ("vault large", large("/v1/auth/ci/login")),
        ("strongbox large", large("/v1/jwt-login")),
        ("strongbox get", strongbox_get()),
        ("conjur get", conjur_get()),
    ] {
        assert_eq!(status(request).await, 429, "{path}");
    }
    let audit = h.audit();
    for (endpoint, code) in [
        ("vault_login", "body_too_large"),
        ("strongbox_login", "body_too_large"),
        ("vault_login", "bad_request"),
        ("strongbox_login", "method_not_allowed"),
        ("conjur_authenticate", "method_not_allowed"),
    ] {
        let (endpoint, code) = (format!(r#""endpoint":"{endpoint}""#), format!(r#""code":"{code}""#));
        assert!(audit.lines().any(|l| l.contains(&endpoint) && l.contains(&code)), "{endpoint} {code}: {audit}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_body_cut_off_on_the_wire_is_a_bad_request_not_a_body_too_large() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = common::start("").await;
    for (path, shape) in [("/v1/jwt-login", r#""error":"bad_request""#), ("/v1/auth/ci/login", r#""errors""#)] {
        let mut stream = tokio::net::TcpStream::connect(h.base.trim_start_matches("http://")).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"jwt\""
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains(shape), "{path}: {answer}");
    }
    let audit = h.audit();
    assert_eq!(audit.lines().filter(|l| l.contains(r#""code":"bad_request""#)).count(), 2, "{audit}");
    h.stop().await;
}

#[tokio::test]
async fn renewing_a_token_whose_role_a_reload_removed_is_a_500_as_in_vault() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "limited", "sub": "svc" }));
    let (status, body, _) = login(&h, "ci", json!({ "role": "limited", "jwt": jwt })).await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let file = h.policies().join("test.cg");
    let mut text = common::read(&file);
    let start = text.find("role limited {").unwrap();
    let end = start + text[start..].find("\n}\n").unwrap() + 3;
    text.replace_range(start..end, "");
    std::fs::write(&file, text).unwrap();
    h.server.reload().await.unwrap();
    let (status, body) = token_call(&h, reqwest::Method::POST, "renew-self", &token, None).await;
    assert_eq!((status, body), (500, json!({ "errors": ["role \"limited\" does not exist during renewal"] })));
    let audit = h.audit();
    assert!(
        audit.lines().any(|l| l.contains(r#""endpoint":"vault_renew_self""#) && l.contains(r#""code":"unknown_role""#))
    );
    h.stop().await;
}

#[tokio::test]
async fn token_endpoint_requests_without_a_token_or_with_a_wrong_method_are_audited() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job-1", "project": "app" }));
    let (_, body, _) = login(&h, "ci", json!({ "role": "deploy", "jwt": jwt })).await;
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let missing = h.client.get(h.url("/v1/auth/token/lookup-self")).send().await.unwrap();
    assert_eq!(missing.status(), 403);
    let wrong = h.client.get(h.url("/v1/auth/token/renew-self")).header("X-Vault-Token", &token).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"], "POST, PUT");
    assert_eq!(wrong.json::<Value>().await.unwrap(), json!({ "errors": ["unsupported operation"] }));
    // Refused before its endpoint (a wrapped answer asked for): audited as that endpoint.
    let wrapped = h.client.get(h.url("/v1/auth/token/lookup-self")).header("X-Vault-Token", &token);
    assert_eq!(wrapped.header("X-Vault-Wrap-TTL", "60s").send().await.unwrap().status(), 400);
    // A wrong method spends no use: the token still looks up.
    assert_eq!(token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await.0, 200);
    let audit = h.audit();
    let line = |endpoint: &str, code: &str| {
        audit
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|l| l["endpoint"] == endpoint && l["code"] == code)
            .unwrap_or_else(|| panic!("no {endpoint} {code} line: {audit}"))
    };
    let missing = line("vault_lookup_self", "missing_token");
    assert_eq!(missing["client_address"], "127.0.0.1");
    assert!(missing.get("token_sha256").is_none(), "no token, no hash: {missing}");
    assert!(line("vault_lookup_self", "bad_request")["token_sha256"].is_string());
    let wrong = line("vault_renew_self", "method_not_allowed");
    assert!(wrong["token_sha256"].as_str().is_some_and(|h| h.len() == 16), "{wrong}");
    assert!(!audit.contains(&token));
    h.stop().await;
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let jwt_for = |h: &common::Harness| h.ci.token(json!({ "aud": "fenced", "sub": "svc" }));
    let send = |h: &common::Harness, forwarded: &'static str| {
        let request = h
            .client
            .post(h.url("/v1/auth/ci/login"))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({ "role": "fenced", "jwt": jwt_for(h) }));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Not trusted: the header is ignored and 127.0.0.1 is outside 10.0.0.0/8.
    let h = common::start("").await;
    assert_eq!(send(&h, "10.1.2.3").await, 403);
    h.stop().await;
    let h = common::start("trusted_proxies = [\"127.0.0.1\"]").await;
    assert_eq!(send(&h, "10.1.2.3").await, 200);
    // The nearest untrusted hop counts, not what the client wrote first.
    assert_eq!(send(&h, "10.9.9.9, 192.0.2.1").await, 403);
    assert_eq!(send(&h, "not an address").await, 400);
    // Through a trusted proxy that names no client: refused, not taken as the proxy's own
    // address (which the role's 10.0.0.0/8 bound might cover in a real deployment).
    let bare = h.client.post(h.url("/v1/auth/ci/login")).json(&json!({ "role": "fenced", "jwt": jwt_for(&h) }));
    assert_eq!(bare.send().await.unwrap().status().as_u16(), 400);
    assert!(h.audit().contains(r#""client_address":"10.1.2.3""#), "{}", h.audit());
    h.stop().await;
}

#[tokio::test]
async fn claims_reach_the_audit_log_only_for_verbose_roles() {
    let h = common::start("").await;
    let chatty = h.ci.token(json!({ "aud": "chatty", "sub": "talker", "note": "line\nbreak" }));
    let quiet = h.ci.token(json!({ "aud": "limited", "sub": "s", "secret": "silent-value" }));
    assert_eq!(login(&h, "ci", json!({ "role": "chatty", "jwt": chatty })).await.0, 200);
    assert_eq!(login(&h, "ci", json!({ "role": "limited", "jwt": quiet })).await.0, 200);
    let audit = h.audit();
    let lines: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["claims"]["sub"], "talker");
    assert_eq!(lines[0]["claims"]["note"], "line\nbreak");
    assert_eq!(audit.lines().count(), 2, "an escaped newline cannot split a line");
    assert!(lines[1].get("claims").is_none());
    assert!(!audit.contains("silent-value"));
    h.stop().await;
}

/// A token stored before keys began with the issue time (under its plain SHA-256) still works
/// after an upgrade: looked up, used and revoked under the key it was stored with.
#[tokio::test]
async fn a_token_stored_under_its_plain_hash_before_an_upgrade_still_works() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job-1", "project": "app" }));
    let (status, body, _) = login(&h, "ci", json!({ "role": "deploy", "jwt": jwt })).await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let plain = ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref().to_vec();
    let database = rusqlite::Connection::open(h.dir.path().join("data/claimgate.sqlite3")).unwrap();
    database.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(database.execute("UPDATE tokens SET hash = ?1", [&plain]).unwrap(), 1);
    drop(database);
    let (status, looked) = token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await;
    assert_eq!(status, 200, "{looked}");
    assert_eq!(looked["data"]["id"], token.as_str());
    let (status, _) = token_call(&h, reqwest::Method::POST, "revoke-self", &token, None).await;
    assert_eq!(status, 204);
    let (status, _) = token_call(&h, reqwest::Method::GET, "lookup-self", &token, None).await;
    assert_eq!(status, 403);
}
