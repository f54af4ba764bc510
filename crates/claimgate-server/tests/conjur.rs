//! The Conjur and Strongbox logins, the verification documents, and the operator endpoints.

mod common;

use base64::Engine as _;
use serde_json::{Value, json};

async fn conjur(h: &common::Harness, path: &str, form: &str, base64: bool) -> reqwest::Response {
    let mut request =
        h.client.post(h.url(path)).header("Content-Type", "application/x-www-form-urlencoded").body(form.to_string());
    if base64 {
        request = request.header("Accept-Encoding", "base64");
    }
    request.send().await.unwrap()
}

fn form(jwt: &str) -> String {
    form_urlencoded::Serializer::new(String::new()).append_pair("jwt", jwt).finish()
}

/// Verifies a Conjur-shaped token (flattened JWS) with the server's JWKS, as a downstream
/// service would, with claimgate's own signature core.
async fn verify_with_jwks(h: &common::Harness, token: &Value) -> Value {
    let jwks = h.client.get(h.url("/.well-known/jwks.json")).send().await.unwrap().text().await.unwrap();
    let keys = claimgate_jose::KeySet::from_jwks_json(jwks.as_bytes()).unwrap();
    let compact = format!(
        "{}.{}.{}",
        token["protected"].as_str().unwrap(),
        token["payload"].as_str().unwrap(),
        token["signature"].as_str().unwrap()
    );
    let verifier = claimgate_jose::Verifier::new(
        keys,
        claimgate_jose::AlgorithmSet::from_iter([claimgate_jose::Algorithm::EdDSA]),
    );
    let verified = verifier.verify(compact.as_bytes()).expect("the token verifies with the server's JWKS");
    // Conjur's own clients read the payload with padded standard base64 (conjur-api-go's
    // `base64.StdEncoding`), not base64url: the same bytes either way.
    let standard = base64::engine::general_purpose::STANDARD.decode(token["payload"].as_str().unwrap());
    assert_eq!(standard.as_deref(), Ok(&verified.payload[..]), "the payload reads as standard base64 too");
    serde_json::from_slice(&verified.payload).unwrap()
}

#[tokio::test]
async fn conjur_returns_a_signed_token_as_json_or_base64() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let response = conjur(&h, "/authn-jwt/ci/myorg/authenticate", &form(&jwt), false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let token: Value = response.json().await.unwrap();
    let claims = verify_with_jwks(&h, &token).await;
    assert_eq!(claims["sub"], "host/jwt-apps/app");
    assert_eq!(claims["iss"], h.base.as_str());
    assert_eq!(claims["aud"], "myorg", "the account, so another account's consumers refuse it");
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 900, "the role's ttl");

    // A role that limits its tokens' uses cannot be served: nothing would count them.
    let limited = h.ci.token(json!({ "aud": "limited", "sub": "svc" }));
    let response = conjur(&h, "/authn-jwt/ci/myorg/authenticate", &form(&limited), false).await;
    assert_eq!(response.status(), 401);
    assert!(h.audit().contains(r#""code":"token_settings_unsupported""#), "{}", h.audit());
    // A periodic role: the token lives the role's ceiling at most (explicit_max_ttl 2h, no ttl
    // of its own: Conjur's 8 minutes).
    let periodic = h.ci.token(json!({ "aud": "periodic", "sub": "svc" }));
    let response = conjur(&h, "/authn-jwt/ci/myorg/authenticate", &form(&periodic), false).await;
    assert_eq!(response.status(), 200);
    let claims = verify_with_jwks(&h, &response.json().await.unwrap()).await;
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 480);

    // With the host id in the URL, URL-encoded as Conjur's documentation writes it.
    let response = conjur(&h, "/authn-jwt/ci/myorg/host%2Fjwt-apps%2Fapp/authenticate", &form(&jwt), true).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.headers()["content-encoding"], "base64");
    let text = response.text().await.unwrap();
    let token: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(text).unwrap()).unwrap();
    assert_eq!(verify_with_jwks(&h, &token).await["sub"], "host/jwt-apps/app");
    h.stop().await;
}

#[tokio::test]
async fn conjur_refusals_are_401_without_a_body_and_malformed_requests_400() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let cases = [
        // Another host than the identity the role maps.
        ("/authn-jwt/ci/myorg/host%2Fjwt-apps%2Fother/authenticate", form(&jwt), 401),
        ("/authn-jwt/ci/nope/authenticate", form(&jwt), 401),
        ("/authn-jwt/nope/myorg/authenticate", form(&jwt), 401),
        // The provider of the service id must be the token's.
        ("/authn-jwt/other/myorg/authenticate", form(&jwt), 401),
        ("/authn-jwt/ci/myorg/authenticate", form(&h.ci.token(json!({ "aud": "vault", "project": "x" }))), 401),
        ("/authn-jwt/ci/myorg/authenticate", "jwt=".into(), 400),
        ("/authn-jwt/ci/myorg/authenticate", "token=abc".into(), 400),
        // Of two jwt fields the last counts, as in Conjur; a jwt of only spaces is malformed.
        ("/authn-jwt/ci/myorg/authenticate", format!("{}&{}", form(&jwt), form("a.b.c")), 401),
        ("/authn-jwt/ci/myorg/authenticate", "jwt=%20%20".into(), 401),
        ("/authn-jwt/ci/myorg/authenticate", form("not a token"), 401),
        // Header injection through the host id: refused before anything reads it.
        ("/authn-jwt/ci/myorg/host%2Fa%0D%0ASet-Cookie:%20x=y/authenticate", form(&jwt), 400),
    ];
    for (path, body, expected) in cases {
        let response = conjur(&h, path, &body, false).await;
        assert_eq!(response.status().as_u16(), expected, "{path} {body}");
        assert!(response.headers().get("set-cookie").is_none());
        assert_eq!(response.text().await.unwrap(), "", "{path}: nothing leaks");
    }
    h.stop().await;
}

#[tokio::test]
async fn an_account_takes_only_its_providers_and_wrong_names_count_against_the_quota() {
    let h =
        common::start("[accounts]\ndev = [\"ci\"]\nprod = [\"other\"]\n[limits]\nfailed_logins_per_minute = 4\n").await;
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let strongbox = |tenant: &str| {
        let request = h
            .client
            .post(h.url("/v1/jwt-login"))
            .json(&json!({ "tenant": tenant, "provider": "ci", "role": "deploy", "jwt": jwt }));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let body = form(&jwt);
    let login = |path: &'static str| {
        let request = conjur(&h, path, &body, false);
        async move { request.await.status().as_u16() }
    };
    // `ci` logs in to `dev`, its account, whether as a Conjur account or a Strongbox tenant.
    assert_eq!(login("/authn-jwt/ci/dev/authenticate").await, 200);
    assert_eq!(strongbox("dev").await, 200);
    // Not to `prod`, which takes `other` only: a token the policy allows for one account does
    // not get an access token whose `aud` names another.
    assert_eq!(strongbox("prod").await, 400);
    assert_eq!(login("/authn-jwt/ci/prod/authenticate").await, 401);
    assert_eq!(login("/authn-jwt/ci/myorg/authenticate").await, 401);
    assert_eq!(login("/authn-jwt/nope/dev/authenticate").await, 401);
    // Exactly four counted, the quota: a good login still passes.
    assert_eq!(login("/authn-jwt/ci/dev/authenticate").await, 200);
    // The fifth exceeds it: from then on the client learns nothing, not even which names exist.
    assert_eq!(login("/authn-jwt/nope/dev/authenticate").await, 401);
    assert_eq!(login("/authn-jwt/ci/dev/authenticate").await, 429);
    assert_eq!(login("/authn-jwt/nope/dev/authenticate").await, 429);
    assert_eq!(strongbox("dev").await, 429);
    h.stop().await;
}

#[tokio::test]
async fn meta_tenant_is_only_ever_the_tenant_a_strongbox_login_named() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "tenanted", "sub": "svc", "tenant": "prod" }));
    let lookup = |token: String| {
        let request = h.client.get(h.url("/v1/auth/token/lookup-self")).header("X-Vault-Token", token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["data"].clone()
        }
    };
    // A Vault role maps `tenant` from the claims: the token does not carry it.
    let response = h.client.post(h.url("/v1/auth/ci/login")).json(&json!({ "role": "tenanted", "jwt": jwt }));
    let body: Value = response.send().await.unwrap().json().await.unwrap();
    assert_eq!(body["auth"]["metadata"], json!({ "role": "tenanted" }), "{body}");
    let data = lookup(body["auth"]["client_token"].as_str().unwrap().to_string()).await;
    assert_eq!(data["meta"], json!({ "role": "tenanted" }), "{data}");
    assert_eq!(data["path"], "auth/ci/login");
    // A Strongbox login: the tenant it named, or none, never the claim's.
    for (tenant, meta) in [
        (json!("myorg"), json!({ "role": "tenanted", "tenant": "myorg" })),
        (Value::Null, json!({ "role": "tenanted" })),
    ] {
        let mut request = json!({ "provider": "ci", "role": "tenanted", "jwt": jwt });
        if !tenant.is_null() {
            request["tenant"] = tenant;
        }
        let response = h.client.post(h.url("/v1/jwt-login")).json(&request).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let data = lookup(body["token"].as_str().unwrap().to_string()).await;
        assert_eq!(data["meta"], meta, "{request}");
        // Its path is its endpoint's, which no Vault mount can take.
        assert_eq!(data["path"], "jwt-login");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_parse_error_echoes_the_clients_text_escaped_and_cut() {
    let h = common::start("").await;
    // An unknown field's name is the client's text: 60 KiB of it, with a terminal escape.
    let name = format!("\u{1b}[31m{}", "x".repeat(60 * 1024));
    let strongbox = h.client.post(h.url("/v1/jwt-login")).json(&json!({ name.clone(): 1, "jwt": "x" }));
    let strongbox: Value = strongbox.send().await.unwrap().json().await.unwrap();
    let message = strongbox["message"].as_str().unwrap();
    assert!(message.len() < 230, "{} characters: {}", message.len(), &message[..300.min(message.len())]);
    assert!(message.chars().all(|c| (' '..='~').contains(&c)), "{message}");
    assert!(message.starts_with("the body is not a login request: unknown field `\\u{1b}[31mxxx"), "{message}");
    assert!(message.ends_with("xxx..."), "{message}");
    h.stop().await;
}

#[tokio::test]
async fn strongbox_login_returns_its_token_fields() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "limited", "sub": "svc" }));
    let response = h
        .client
        .post(h.url("/v1/jwt-login"))
        .json(&json!({ "tenant": "myorg", "provider": "ci", "role": "limited", "jwt": jwt }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires-in"], 600);
    assert!(body["token"].as_str().unwrap().starts_with("sbt."));
    assert_eq!(body["accessor"].as_str().unwrap().len(), 24);
    assert_eq!(body["creation-time"], body["renewal-time"]);
    assert!(body["expires"].as_str().unwrap().ends_with('Z'));
    // The token is a token of this server: the Vault token endpoints know it.
    let looked = h
        .client
        .get(h.url("/v1/auth/token/lookup-self"))
        .header("X-Vault-Token", body["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(looked.status(), 200);
    // It shows the tenant it was issued for.
    let looked: Value = looked.json().await.unwrap();
    assert_eq!(looked["data"]["meta"]["tenant"], "myorg", "{looked}");

    for (request, status, code) in [
        (
            json!({ "provider": "ci", "role": "limited", "jwt": h.other.token(json!({ "aud": "limited" })) }),
            401,
            "issuer_mismatch",
        ),
        (json!({ "provider": "ci", "role": "deploy", "jwt": jwt }), 401, "audience_mismatch"),
        (json!({ "provider": "nope", "role": "limited", "jwt": jwt }), 400, "bad_request"),
        (json!({ "tenant": "nope", "provider": "ci", "role": "limited", "jwt": jwt }), 400, "bad_request"),
        (json!({ "provider": "ci", "role": "limited", "jwt": jwt, "extra": 1 }), 400, "bad_request"),
        (json!({ "provider": "ci", "jwt": jwt }), 400, "bad_request"),
    ] {
        let response = h.client.post(h.url("/v1/jwt-login")).json(&request).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{request}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{request}");
    }
    h.stop().await;
}

#[tokio::test]
async fn discovery_jwks_health_readiness_and_metrics() {
    let h = common::start("").await;
    let discovery: Value =
        h.client.get(h.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], h.base.as_str());
    assert_eq!(discovery["jwks_uri"], format!("{}/.well-known/jwks.json", h.base));
    let jwks: Value = h.client.get(h.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    // The key that signs now and the next one, announced before it signs.
    assert_eq!(keys.len(), 2, "{jwks}");
    assert!(keys.iter().all(|k| k["kty"] == "OKP" && k["alg"] == "EdDSA" && k.get("d").is_none()));
    let health = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = h.client.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["providers"].as_array().unwrap().len(), 2);
    // A login, then its counters.
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let _ = h.client.post(h.url("/v1/auth/ci/login")).json(&json!({ "jwt": jwt })).send().await.unwrap();
    let metrics = h.client.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("claimgate_logins_total{"), "{metrics}");
    assert!(metrics.contains("claimgate_login_duration_seconds_bucket"), "{metrics}");
    h.stop().await;
}

#[tokio::test]
async fn the_audit_log_has_one_line_per_decision_and_no_token() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let response = h.client.post(h.url("/v1/auth/ci/login")).json(&json!({ "jwt": jwt })).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    let issued = body["auth"]["client_token"].as_str().unwrap();
    let _ = conjur(&h, "/authn-jwt/ci/myorg/authenticate", &form(&jwt), false).await;
    let audit = h.audit();
    let lines: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{audit}");
    let first = &lines[0];
    assert_eq!(first["endpoint"], "vault_login");
    assert_eq!(first["code"], "allow");
    assert_eq!(first["provider"], "ci");
    assert_eq!(first["role"], "deploy");
    assert_eq!(first["identity"], "host/jwt-apps/app");
    assert_eq!(first["client_address"], "127.0.0.1");
    assert_eq!(first["kid"], "ci-1");
    assert_eq!(first["token_sha256"].as_str().unwrap().len(), 16);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[1]["endpoint"], "conjur_authenticate");
    assert!(!audit.contains(&jwt) && !audit.contains(issued), "no token in the audit log");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(h.dir.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("data"), mode("data/claimgate.sqlite3"), mode("data/audit.log")), (0o700, 0o600, 0o600));
    }
    h.stop().await;
}

#[tokio::test]
async fn a_policy_set_with_errors_is_refused_and_shown_while_the_old_one_serves() {
    let h = common::start("").await;
    let file = h.policies().join("test.cg");
    let good = common::read(&file);
    std::fs::write(&file, format!("{good}\nrole broken {{ provider = nope }}\n")).unwrap();
    assert!(h.server.reload().await.is_err());
    let ready: Value = h.client.get(h.url("/readyz")).send().await.unwrap().json().await.unwrap();
    // The count, never the policy text: /readyz answers anyone who reaches the listener.
    assert_eq!(
        ready["policies"]["reload_error"],
        "the policies have 2 problems; the server's log shows why, and the previous set keeps serving"
    );
    assert!(!ready.to_string().contains("nope"), "{ready}");
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let response = h.client.post(h.url("/v1/auth/ci/login")).json(&json!({ "jwt": jwt })).send().await.unwrap();
    assert_eq!(response.status(), 200, "the previous set keeps serving");
    std::fs::write(&file, good.replace("claims.project == \"app\"", "claims.project == \"other\"")).unwrap();
    h.server.reload().await.unwrap();
    let ready: Value = h.client.get(h.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["policies"]["reload_error"], Value::Null);
    let response = h.client.post(h.url("/v1/auth/ci/login")).json(&json!({ "jwt": jwt })).send().await.unwrap();
    assert_eq!(response.status(), 400, "the new set decides");
    h.stop().await;
}

#[tokio::test]
async fn a_reload_that_drops_a_provider_named_by_a_mount_or_an_account_is_refused() {
    let h = common::start(
        "[vault.mounts]\nci = \"ci\"\nelsewhere = \"other\"\n[accounts]\ndev = [\"ci\"]\nprod = [\"ci\", \"other\"]\n",
    )
    .await;
    let readyz = || async { h.client.get(h.url("/readyz")).send().await.unwrap().json::<Value>().await.unwrap() };
    let file = h.policies().join("test.cg");
    let original = common::read(&file);
    let without = |blocks: &[&str]| {
        let mut text = original.clone();
        for block in blocks {
            let start = text.find(block).unwrap();
            let end = start + text[start..].find("\n}\n").unwrap() + 3;
            text.replace_range(start..end, "");
        }
        text
    };
    // The set without provider `other` (and its role) is valid policy, but mount `elsewhere`
    // and account `prod` name that provider: the reload is refused and the current set serves.
    std::fs::write(&file, without(&["provider other {", "role other-role {"])).unwrap();
    let error = h.server.reload().await.unwrap_err();
    assert_eq!(error, "vault.mounts: mount `elsewhere` names provider `other`, which the policies do not define");
    let ready = readyz().await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(
        ready["policies"]["reload_error"],
        "vault.mounts: mount `elsewhere` names provider `other`, which the policies do not define; the server's \
         log shows why, and the previous set keeps serving"
    );
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    assert_eq!(conjur(&h, "/authn-jwt/ci/prod/authenticate", &form(&jwt), false).await.status(), 200);
    let other = h.other.token(json!({ "aud": "vault", "sub": "job" }));
    let response =
        h.client.post(h.url("/v1/auth/elsewhere/login")).json(&json!({ "jwt": other })).send().await.unwrap();
    assert_eq!(response.status(), 200, "mount `elsewhere` still has its provider");
    // A set that keeps every named provider reloads, and clears the error.
    std::fs::write(&file, &original).unwrap();
    h.server.reload().await.unwrap();
    assert_eq!(readyz().await["policies"]["reload_error"], Value::Null);
    h.stop().await;
}

#[tokio::test]
async fn a_change_in_the_policy_folder_reloads_by_itself() {
    let h = common::start("").await;
    let jwt = h.ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let login = || h.client.post(h.url("/v1/auth/ci/login")).json(&json!({ "jwt": jwt })).send();
    assert_eq!(login().await.unwrap().status(), 200);
    let file = h.policies().join("test.cg");
    let text = common::read(&file).replace("claims.project == \"app\"", "claims.project == \"other\"");
    std::fs::write(&file, text).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while login().await.unwrap().status() != 400 {
        assert!(std::time::Instant::now() < deadline, "the watcher did not reload");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    h.stop().await;
}
