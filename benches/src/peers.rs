//! Three realistic roles, each written equivalently in every language the peer benchmark compares
//! (claimgate, Rego, CEL, Cedar and a hand-written serde_json version), and the shared claim sets
//! that every variant must decide the same way before anything is timed.
//!
//! The roles are the example policies' GitLab, GitHub Actions and Kubernetes roles. Two regular
//! expressions of the examples are written as globs here (`claims.ref glob "refs/tags/v*"`,
//! `claims.sub glob "system:serviceaccount:payments:*"`), because Cedar has no regular
//! expressions and the comparison must use the same rules everywhere. Each glob is a prefix (or a
//! prefix and a suffix that cannot overlap), so `startswith`/`endswith` in Rego and CEL and `like`
//! in Cedar say exactly the same thing.
//!
//! What every variant checks, for every role: the issuer, the audience (a string equal to it or a
//! list holding it), `exp`, `nbf` and `iat` present and numbers, within the 60 s clock skew, the
//! provider's maximum lifetime or token age, and the role's conditions, where a missing claim
//! denies. The peers return the allow/deny decision only; claimgate and the hand-written version
//! also build the grant (identity, user, metadata, policies), which is more work, not less.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// The time every decision is made at (the example claim sets' `iat` + 100 s).
pub const NOW: i64 = 1_732_350_100;

/// The three roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Gitlab,
    Github,
    Kubernetes,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [Scenario::Gitlab, Scenario::Github, Scenario::Kubernetes];

    /// Benchmark id and Rego package name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Gitlab => "gitlab",
            Scenario::Github => "github",
            Scenario::Kubernetes => "kubernetes",
        }
    }

    /// The claimgate role (and the Cedar resource id).
    pub fn role(self) -> &'static str {
        match self {
            Scenario::Gitlab => "gitlab-deploy-production",
            Scenario::Github => "github-deploy-prod",
            Scenario::Kubernetes => "payments-api",
        }
    }

    /// The example claim set that logs in (copied from shared/examples).
    pub fn allowed(self) -> &'static str {
        match self {
            Scenario::Gitlab => GITLAB,
            Scenario::Github => GITHUB,
            Scenario::Kubernetes => KUBERNETES,
        }
    }

    pub fn rego(self) -> &'static str {
        match self {
            Scenario::Gitlab => REGO_GITLAB,
            Scenario::Github => REGO_GITHUB,
            Scenario::Kubernetes => REGO_KUBERNETES,
        }
    }

    pub fn cel(self) -> &'static str {
        match self {
            Scenario::Gitlab => CEL_GITLAB,
            Scenario::Github => CEL_GITHUB,
            Scenario::Kubernetes => CEL_KUBERNETES,
        }
    }

    pub fn cedar(self) -> &'static str {
        match self {
            Scenario::Gitlab => CEDAR_GITLAB,
            Scenario::Github => CEDAR_GITHUB,
            Scenario::Kubernetes => CEDAR_KUBERNETES,
        }
    }

    /// The hand-written version: `Some(grant)` when it allows.
    pub fn floor(self, payload: &[u8]) -> Option<FloorGrant> {
        match self {
            Scenario::Gitlab => floor_gitlab(payload),
            Scenario::Github => floor_github(payload),
            Scenario::Kubernetes => floor_kubernetes(payload),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Claim sets: shared/examples/*.json (copied, so that a plain clone runs), and variations.

/// shared/examples/gitlab-ci.json.
pub const GITLAB: &str = r#"{"iss":"https://gitlab.example.com","aud":"strongbox","sub":"project_path:mygroup/myproject:ref_type:branch:ref:main","jti":"235b3a54-1f3e-4b6a-9f0e-6c2d7f1e9a10","iat":1732350000,"nbf":1732349995,"exp":1732353600,"namespace_id":"72","namespace_path":"mygroup","project_id":"20","project_path":"mygroup/myproject","user_login":"sample-user","pipeline_id":"574","pipeline_source":"push","job_id":"302","ref":"main","ref_type":"branch","ref_path":"refs/heads/main","ref_protected":"true","environment":"production","environment_protected":"true","deployment_tier":"production","runner_id":1,"runner_environment":"gitlab-hosted","sha":"714a629c0b401fdce83e847fc9589983fc6f46bc","strongbox_policies":["reader","deployer"]}"#;

/// shared/examples/github-actions.json.
pub const GITHUB: &str = r#"{"iss":"https://token.actions.githubusercontent.com","aud":"https://github.com/octo-org","sub":"repo:octo-org/octo-repo:environment:prod","jti":"6f4762ed-6f2a-4d3c-bb35-8e1ad2b3f9a1","iat":1732350000,"nbf":1732349700,"exp":1732350900,"repository":"octo-org/octo-repo","repository_id":"74","repository_owner":"octo-org","repository_owner_id":"65","repository_visibility":"private","ref":"refs/heads/main","ref_type":"branch","sha":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4","environment":"prod","event_name":"workflow_dispatch","workflow":"deploy","workflow_ref":"octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main","job_workflow_ref":"octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main","actor":"octocat","actor_id":"12","run_id":"5512","run_attempt":"2","runner_environment":"github-hosted"}"#;

/// shared/examples/kubernetes.json.
pub const KUBERNETES: &str = r#"{"aud":["vault"],"exp":1732353600,"iat":1732350000,"nbf":1732350000,"iss":"https://kubernetes.default.svc.cluster.local","jti":"a8f7c1e2-33b4-4d5e-9f60-7182a3b4c5d6","kubernetes.io":{"namespace":"payments","node":{"name":"node-7","uid":"0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"},"pod":{"name":"api-7d9f8c-x2k4q","uid":"5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"},"serviceaccount":{"name":"api","uid":"9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"}},"sub":"system:serviceaccount:payments:api"}"#;

/// One claim set and the decision every variant must reach on it.
#[derive(Clone, Debug)]
pub struct Case {
    pub scenario: Scenario,
    pub what: &'static str,
    pub claims: String,
    pub allow: bool,
}

/// `text` with `from` replaced once (it must occur).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from} not in claims");
    text.replacen(from, to, 1)
}

/// The shared allow and deny claim sets of all three roles.
pub fn cases() -> Vec<Case> {
    use Scenario::*;
    let mut out = Vec::new();
    let mut add = |scenario, what, claims: String, allow| out.push(Case { scenario, what, claims, allow });

    let g = GITLAB;
    add(Gitlab, "example", g.to_string(), true);
    add(Gitlab, "no environment (optional)", edit(g, r#""environment":"production","#, ""), true);
    add(Gitlab, "audience in a list", edit(g, r#""aud":"strongbox""#, r#""aud":["other","strongbox"]"#), true);
    add(Gitlab, "feature branch", edit(g, r#""ref":"main""#, r#""ref":"feature/login""#), false);
    add(Gitlab, "unprotected ref", edit(g, r#""ref_protected":"true""#, r#""ref_protected":"false""#), false);
    add(Gitlab, "boolean, not string", edit(g, r#""ref_protected":"true""#, r#""ref_protected":true"#), false);
    add(Gitlab, "other project", edit(g, r#""project_path":"mygroup/myproject""#, r#""project_path":"x/y""#), false);
    add(Gitlab, "no pipeline_id", edit(g, r#""pipeline_id":"574","#, ""), false);
    add(Gitlab, "other audience", edit(g, r#""aud":"strongbox""#, r#""aud":"vault""#), false);
    add(Gitlab, "other issuer", edit(g, "https://gitlab.example.com", "https://gitlab.com"), false);
    add(Gitlab, "expired", edit(g, r#""exp":1732353600"#, r#""exp":1732350039"#), false);
    add(Gitlab, "lives too long", edit(g, r#""exp":1732353600"#, r#""exp":1732357201"#), false);
    add(Gitlab, "no nbf", edit(g, r#""nbf":1732349995,"#, ""), false);

    let h = GITHUB;
    add(Github, "example", h.to_string(), true);
    add(Github, "release tag", edit(h, r#""ref":"refs/heads/main""#, r#""ref":"refs/tags/v2.14.0""#), true);
    add(Github, "dependabot", edit(h, r#""actor":"octocat""#, r#""actor":"dependabot[bot]""#), false);
    add(Github, "renovate", edit(h, r#""actor":"octocat""#, r#""actor":"renovate[bot]""#), false);
    add(Github, "no actor", edit(h, r#""actor":"octocat","#, ""), false);
    add(Github, "staging", edit(h, r#""environment":"prod""#, r#""environment":"staging""#), false);
    add(Github, "no environment", edit(h, r#""environment":"prod","#, ""), false);
    add(
        Github,
        "own workflow",
        edit(h, r#""job_workflow_ref":"octo-org/octo-automation/"#, r#""job_workflow_ref":"octo-org/octo-repo/"#),
        false,
    );
    add(Github, "feature branch", edit(h, r#""ref":"refs/heads/main""#, r#""ref":"refs/heads/feature""#), false);
    add(
        Github,
        "self-hosted",
        edit(h, r#""runner_environment":"github-hosted""#, r#""runner_environment":"self-hosted""#),
        false,
    );
    add(Github, "too old", edit(h, r#""iat":1732350000"#, r#""iat":1732349439"#), false);
    add(Github, "other audience", edit(h, r#""aud":"https://github.com/octo-org""#, r#""aud":"sts""#), false);

    let k = KUBERNETES;
    add(Kubernetes, "example", k.to_string(), true);
    add(
        Kubernetes,
        "no node",
        edit(k, r#""node":{"name":"node-7","uid":"0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"},"#, ""),
        true,
    );
    add(Kubernetes, "audience as a string", edit(k, r#""aud":["vault"]"#, r#""aud":"vault""#), true);
    add(Kubernetes, "other namespace", edit(k, r#""namespace":"payments""#, r#""namespace":"default""#), false);
    add(
        Kubernetes,
        "no pod",
        edit(k, r#""pod":{"name":"api-7d9f8c-x2k4q","uid":"5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"},"#, ""),
        false,
    );
    add(
        Kubernetes,
        "other service account",
        edit(k, r#""serviceaccount":{"name":"api""#, r#""serviceaccount":{"name":"default""#),
        false,
    );
    add(
        Kubernetes,
        "sub of another namespace",
        edit(k, "system:serviceaccount:payments:api", "system:serviceaccount:default:api"),
        false,
    );
    add(Kubernetes, "other audience", edit(k, r#""aud":["vault"]"#, r#""aud":["api"]"#), false);
    add(Kubernetes, "expired", edit(k, r#""exp":1732353600"#, r#""exp":1732350000"#), false);
    add(Kubernetes, "lives too long", edit(k, r#""iat":1732350000"#, r#""iat":1732346399"#), false);
    add(Kubernetes, "not yet valid", edit(k, r#""nbf":1732350000"#, r#""nbf":1732350161"#), false);
    out
}

// ---------------------------------------------------------------------------------------------
// claimgate: the three example roles (regular expressions written as globs, see above).

pub const CLAIMGATE: &str = r#"
provider gitlab {
  issuer = "https://gitlab.example.com"
  keys {
    jwks_url = "https://gitlab.example.com/oauth/discovery/keys"
  }
  algorithms = [RS256]
  clock_skew = 60s
  required_time_claims = [exp, iat, nbf]
  max_lifetime = 2h
}

role gitlab-deploy-production {
  provider = gitlab
  audience = "strongbox"
  require {
    claims.project_path == "mygroup/myproject" message "only mygroup/myproject deploys to production"
    claims.ref == "main" message "production deploys run from the main branch"
    claims.ref_type == "branch"
    claims.ref_protected == "true"
    claims.project_id exists
    claims.pipeline_id exists
  }
  identity = "gitlab/" + claims.project_path
  user = claims.user_login
  metadata {
    project_id = claims.project_id
    pipeline_id = claims.pipeline_id
    environment = optional claims.environment
  }
  policies = ["ci-base"] + claims.strongbox_policies
  token {
    ttl = 15m
  }
}

provider github-actions {
  issuer = "https://token.actions.githubusercontent.com"
  keys {
    discovery_url = "https://token.actions.githubusercontent.com"
  }
  algorithms = [RS256]
  required_time_claims = [exp, iat, nbf]
  max_token_age = 10m
}

role github-deploy-prod {
  provider = github-actions
  audience = "https://github.com/octo-org"
  require {
    claims.repository_owner == "octo-org"
    claims.repository == "octo-org/octo-repo"
    claims.environment == "prod"
    claims.job_workflow_ref glob "octo-org/octo-automation/.github/workflows/*@refs/heads/main"
    any {
      claims.ref == "refs/heads/main"
      claims.ref glob "refs/tags/v*"
    }
    not claims.actor in ["dependabot[bot]", "renovate[bot]"] message "bots do not deploy to production"
    claims.runner_environment == "github-hosted"
  }
  identity = "github/" + claims.repository + "/" + claims.environment
  user = claims.actor
  metadata {
    repository_id = claims.repository_id
    run_id = claims.run_id
    sha = claims.sha
  }
  policies = ["deploy-prod"]
}

provider kubernetes {
  issuer = "https://kubernetes.default.svc.cluster.local"
  keys {
    jwks_url = "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
  }
  algorithms = [ES256, RS256]
  required_time_claims = [exp, iat, nbf]
  max_lifetime = 2h
}

role payments-api {
  provider = kubernetes
  audience = "vault"
  require {
    claims."kubernetes.io".namespace == "payments"
    claims."kubernetes.io".serviceaccount.name == "api"
    claims.sub glob "system:serviceaccount:payments:*"
    claims."kubernetes.io".pod.name exists message "only tokens bound to a pod are accepted"
  }
  identity = "k8s/" + claims."kubernetes.io".namespace + "/" + claims."kubernetes.io".serviceaccount.name
  metadata {
    pod = claims."kubernetes.io".pod.name
    node = optional claims."kubernetes.io".node.name
    service_account_uid = claims."kubernetes.io".serviceaccount.uid
  }
  policies = ["payments-db-creds"]
}
"#;

// ---------------------------------------------------------------------------------------------
// Rego (regorus). Input: {"now": <seconds>, "claims": <the claim set>}. A missing claim makes a
// rule body undefined, so `allow` keeps its default; `not x in set` would be true for a missing
// `x`, so the bot rule says that `actor` must be a string first.

pub const REGO_GITLAB: &str = r#"
package gitlab
import rego.v1

default allow := false

aud_ok if input.claims.aud == "strongbox"
aud_ok if {
  is_array(input.claims.aud)
  "strongbox" in input.claims.aud
}

allow if {
  c := input.claims
  c.iss == "https://gitlab.example.com"
  aud_ok
  is_number(c.exp)
  is_number(c.iat)
  is_number(c.nbf)
  input.now - 60 <= c.exp
  input.now + 60 >= c.nbf
  input.now + 60 >= c.iat
  c.exp - c.iat <= 7200
  c.project_path == "mygroup/myproject"
  c.ref == "main"
  c.ref_type == "branch"
  c.ref_protected == "true"
  c.project_id != null
  c.pipeline_id != null
}
"#;

pub const REGO_GITHUB: &str = r#"
package github
import rego.v1

default allow := false

aud_ok if input.claims.aud == "https://github.com/octo-org"
aud_ok if {
  is_array(input.claims.aud)
  "https://github.com/octo-org" in input.claims.aud
}

ref_ok if input.claims.ref == "refs/heads/main"
ref_ok if {
  is_string(input.claims.ref)
  startswith(input.claims.ref, "refs/tags/v")
}

allow if {
  c := input.claims
  c.iss == "https://token.actions.githubusercontent.com"
  aud_ok
  is_number(c.exp)
  is_number(c.iat)
  is_number(c.nbf)
  input.now - 60 <= c.exp
  input.now + 60 >= c.nbf
  input.now + 60 >= c.iat
  input.now - 60 <= c.iat + 600
  c.repository_owner == "octo-org"
  c.repository == "octo-org/octo-repo"
  c.environment == "prod"
  is_string(c.job_workflow_ref)
  startswith(c.job_workflow_ref, "octo-org/octo-automation/.github/workflows/")
  endswith(c.job_workflow_ref, "@refs/heads/main")
  ref_ok
  is_string(c.actor)
  not c.actor in {"dependabot[bot]", "renovate[bot]"}
  c.runner_environment == "github-hosted"
}
"#;

pub const REGO_KUBERNETES: &str = r#"
package kubernetes
import rego.v1

default allow := false

aud_ok if input.claims.aud == "vault"
aud_ok if {
  is_array(input.claims.aud)
  "vault" in input.claims.aud
}

allow if {
  c := input.claims
  c.iss == "https://kubernetes.default.svc.cluster.local"
  aud_ok
  is_number(c.exp)
  is_number(c.iat)
  is_number(c.nbf)
  input.now - 60 <= c.exp
  input.now + 60 >= c.nbf
  input.now + 60 >= c.iat
  c.exp - c.iat <= 7200
  k := c["kubernetes.io"]
  k.namespace == "payments"
  k.serviceaccount.name == "api"
  is_string(c.sub)
  startswith(c.sub, "system:serviceaccount:payments:")
  k.pod.name != null
}
"#;

// ---------------------------------------------------------------------------------------------
// CEL (the `cel` crate). Variables: `now` (int) and `claims` (the claim set as a map). A missing
// key is an evaluation error, which the caller treats as a denial; `has()` tests presence. JSON
// numbers arrive as `uint`: the `cel` crate compares `int` with `uint` but does not add them, so
// `iat + 600 >= now - 60` is written `now - 660 <= iat`.

pub const CEL_GITLAB: &str = r#"
claims.iss == 'https://gitlab.example.com'
&& (claims.aud == 'strongbox' || (type(claims.aud) == list && 'strongbox' in claims.aud))
&& now - 60 <= claims.exp
&& now + 60 >= claims.nbf
&& now + 60 >= claims.iat
&& claims.exp - claims.iat <= 7200
&& claims.project_path == 'mygroup/myproject'
&& claims.ref == 'main'
&& claims.ref_type == 'branch'
&& claims.ref_protected == 'true'
&& has(claims.project_id)
&& has(claims.pipeline_id)
"#;

pub const CEL_GITHUB: &str = r#"
claims.iss == 'https://token.actions.githubusercontent.com'
&& (claims.aud == 'https://github.com/octo-org'
    || (type(claims.aud) == list && 'https://github.com/octo-org' in claims.aud))
&& now - 60 <= claims.exp
&& now + 60 >= claims.nbf
&& now + 60 >= claims.iat
&& now - 660 <= claims.iat
&& claims.repository_owner == 'octo-org'
&& claims.repository == 'octo-org/octo-repo'
&& claims.environment == 'prod'
&& claims.job_workflow_ref.startsWith('octo-org/octo-automation/.github/workflows/')
&& claims.job_workflow_ref.endsWith('@refs/heads/main')
&& (claims.ref == 'refs/heads/main' || claims.ref.startsWith('refs/tags/v'))
&& type(claims.actor) == string
&& !(claims.actor in ['dependabot[bot]', 'renovate[bot]'])
&& claims.runner_environment == 'github-hosted'
"#;

pub const CEL_KUBERNETES: &str = r#"
claims.iss == 'https://kubernetes.default.svc.cluster.local'
&& (claims.aud == 'vault' || (type(claims.aud) == list && 'vault' in claims.aud))
&& now - 60 <= claims.exp
&& now + 60 >= claims.nbf
&& now + 60 >= claims.iat
&& claims.exp - claims.iat <= 7200
&& claims['kubernetes.io'].namespace == 'payments'
&& claims['kubernetes.io'].serviceaccount.name == 'api'
&& claims.sub.startsWith('system:serviceaccount:payments:')
&& has(claims['kubernetes.io'].pod.name)
"#;

// ---------------------------------------------------------------------------------------------
// Cedar (`cedar-policy`). Request: principal `Workload::"token"`, action `Action::"login"`,
// resource `Role::"<role>"`; context {"now": <seconds>, "claims": <the claim set>}. Reading a
// missing attribute is an evaluation error: the policy does not apply, so the request is denied.

pub const CEDAR_GITLAB: &str = r#"
permit (principal, action == Action::"login", resource == Role::"gitlab-deploy-production")
when {
  context.claims.iss == "https://gitlab.example.com" &&
  (context.claims.aud == "strongbox" || context.claims.aud.contains("strongbox")) &&
  context.now - 60 <= context.claims.exp &&
  context.now + 60 >= context.claims.nbf &&
  context.now + 60 >= context.claims.iat &&
  context.claims.exp - context.claims.iat <= 7200 &&
  context.claims.project_path == "mygroup/myproject" &&
  context.claims.ref == "main" &&
  context.claims.ref_type == "branch" &&
  context.claims.ref_protected == "true" &&
  context.claims has project_id &&
  context.claims has pipeline_id
};
"#;

pub const CEDAR_GITHUB: &str = r#"
permit (principal, action == Action::"login", resource == Role::"github-deploy-prod")
when {
  context.claims.iss == "https://token.actions.githubusercontent.com" &&
  (context.claims.aud == "https://github.com/octo-org" ||
    context.claims.aud.contains("https://github.com/octo-org")) &&
  context.now - 60 <= context.claims.exp &&
  context.now + 60 >= context.claims.nbf &&
  context.now + 60 >= context.claims.iat &&
  context.now - 60 <= context.claims.iat + 600 &&
  context.claims.repository_owner == "octo-org" &&
  context.claims.repository == "octo-org/octo-repo" &&
  context.claims.environment == "prod" &&
  context.claims.job_workflow_ref like "octo-org/octo-automation/.github/workflows/*@refs/heads/main" &&
  (context.claims.ref == "refs/heads/main" || context.claims.ref like "refs/tags/v*") &&
  context.claims.actor like "*" &&
  !(["dependabot[bot]", "renovate[bot]"].contains(context.claims.actor)) &&
  context.claims.runner_environment == "github-hosted"
};
"#;

pub const CEDAR_KUBERNETES: &str = r#"
permit (principal, action == Action::"login", resource == Role::"payments-api")
when {
  context.claims.iss == "https://kubernetes.default.svc.cluster.local" &&
  (context.claims.aud == "vault" || context.claims.aud.contains("vault")) &&
  context.now - 60 <= context.claims.exp &&
  context.now + 60 >= context.claims.nbf &&
  context.now + 60 >= context.claims.iat &&
  context.claims.exp - context.claims.iat <= 7200 &&
  context.claims["kubernetes.io"].namespace == "payments" &&
  context.claims["kubernetes.io"].serviceaccount.name == "api" &&
  context.claims.sub like "system:serviceaccount:payments:*" &&
  context.claims["kubernetes.io"] has pod &&
  context.claims["kubernetes.io"].pod has name
};
"#;

// ---------------------------------------------------------------------------------------------
// The floor: what a careful engineer would hand-write for the same three roles, with serde_json
// into borrowed structs (a missing or mistyped claim fails deserialization, so it denies).

/// Grant of the hand-written version: the same strings the engine returns.
#[derive(Debug, PartialEq)]
pub struct FloorGrant {
    pub identity: String,
    pub user: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub policies: Vec<String>,
}

/// `aud`: one audience or a list of them.
pub struct Aud<'a>(Vec<Cow<'a, str>>);

impl Aud<'_> {
    fn holds(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Aud<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudVisitor;
        impl<'de> Visitor<'de> for AudVisitor {
            type Value = Aud<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Aud(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Aud(vec![Cow::Owned(v.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(a) = seq.next_element::<Cow<'de, str>>()? {
                    out.push(a);
                }
                Ok(Aud(out))
            }
        }
        deserializer.deserialize_any(AudVisitor)
    }
}

/// The provider's time checks with a 60 s skew.
fn times_ok(exp: f64, nbf: f64, iat: f64) -> bool {
    let now = NOW as f64;
    now - 60.0 <= exp && now + 60.0 >= nbf && now + 60.0 >= iat
}

#[derive(Deserialize)]
struct GitlabClaims<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    aud: Aud<'a>,
    exp: f64,
    iat: f64,
    nbf: f64,
    #[serde(borrow)]
    project_path: Cow<'a, str>,
    #[serde(borrow, rename = "ref")]
    git_ref: Cow<'a, str>,
    #[serde(borrow)]
    ref_type: Cow<'a, str>,
    #[serde(borrow)]
    ref_protected: Cow<'a, str>,
    #[serde(borrow)]
    project_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pipeline_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_login: Cow<'a, str>,
    #[serde(borrow)]
    environment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    strongbox_policies: Vec<Cow<'a, str>>,
}

pub fn floor_gitlab(payload: &[u8]) -> Option<FloorGrant> {
    let c: GitlabClaims = serde_json::from_slice(payload).ok()?;
    let ok = c.iss == "https://gitlab.example.com"
        && c.aud.holds("strongbox")
        && times_ok(c.exp, c.nbf, c.iat)
        && c.exp - c.iat <= 7200.0
        && c.project_path == "mygroup/myproject"
        && c.git_ref == "main"
        && c.ref_type == "branch"
        && c.ref_protected == "true"
        && c.project_id.is_some()
        && c.pipeline_id.is_some();
    if !ok {
        return None;
    }
    let mut metadata = vec![
        ("project_id".to_string(), c.project_id?.into_owned()),
        ("pipeline_id".to_string(), c.pipeline_id?.into_owned()),
    ];
    if let Some(env) = c.environment {
        metadata.push(("environment".to_string(), env.into_owned()));
    }
    let mut policies = vec!["ci-base".to_string()];
    for p in c.strongbox_policies {
        if !policies.iter().any(|x| *x == p) {
            policies.push(p.into_owned());
        }
    }
    Some(FloorGrant {
        identity: format!("gitlab/{}", c.project_path),
        user: Some(c.user_login.into_owned()),
        metadata,
        policies,
    })
}

#[derive(Deserialize)]
struct GithubClaims<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    aud: Aud<'a>,
    exp: f64,
    iat: f64,
    nbf: f64,
    #[serde(borrow)]
    repository_owner: Cow<'a, str>,
    #[serde(borrow)]
    repository: Cow<'a, str>,
    #[serde(borrow)]
    environment: Cow<'a, str>,
    #[serde(borrow)]
    job_workflow_ref: Cow<'a, str>,
    #[serde(borrow, rename = "ref")]
    git_ref: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    runner_environment: Cow<'a, str>,
    #[serde(borrow)]
    repository_id: Cow<'a, str>,
    #[serde(borrow)]
    run_id: Cow<'a, str>,
    #[serde(borrow)]
    sha: Cow<'a, str>,
}

pub fn floor_github(payload: &[u8]) -> Option<FloorGrant> {
    floor_github_with(payload, |git_ref| git_ref.starts_with("refs/tags/v"))
}

/// [`floor_github`] with another test for release tags: the example policy in `policies/` uses a
/// regular expression where the peers' version of the role uses a glob.
pub fn floor_github_with(payload: &[u8], release_tag: impl Fn(&str) -> bool) -> Option<FloorGrant> {
    let c: GithubClaims = serde_json::from_slice(payload).ok()?;
    let workflow = c
        .job_workflow_ref
        .strip_prefix("octo-org/octo-automation/.github/workflows/")
        .is_some_and(|rest| rest.ends_with("@refs/heads/main"));
    let ok = c.iss == "https://token.actions.githubusercontent.com"
        && c.aud.holds("https://github.com/octo-org")
        && times_ok(c.exp, c.nbf, c.iat)
        && NOW as f64 - 60.0 <= c.iat + 600.0
        && c.repository_owner == "octo-org"
        && c.repository == "octo-org/octo-repo"
        && c.environment == "prod"
        && workflow
        && (c.git_ref == "refs/heads/main" || release_tag(&c.git_ref))
        && c.actor != "dependabot[bot]"
        && c.actor != "renovate[bot]"
        && c.runner_environment == "github-hosted";
    if !ok {
        return None;
    }
    Some(FloorGrant {
        identity: format!("github/{}/{}", c.repository, c.environment),
        user: Some(c.actor.into_owned()),
        metadata: vec![
            ("repository_id".to_string(), c.repository_id.into_owned()),
            ("run_id".to_string(), c.run_id.into_owned()),
            ("sha".to_string(), c.sha.into_owned()),
        ],
        policies: vec!["deploy-prod".to_string()],
    })
}

#[derive(Deserialize)]
struct K8sClaims<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    aud: Aud<'a>,
    exp: f64,
    iat: f64,
    nbf: f64,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    #[serde(borrow, rename = "kubernetes.io")]
    k8s: K8s<'a>,
}

#[derive(Deserialize)]
struct K8s<'a> {
    #[serde(borrow)]
    namespace: Cow<'a, str>,
    #[serde(borrow)]
    serviceaccount: Named<'a>,
    #[serde(borrow)]
    pod: Option<Named<'a>>,
    #[serde(borrow)]
    node: Option<Named<'a>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uid: Option<Cow<'a, str>>,
}

pub fn floor_kubernetes(payload: &[u8]) -> Option<FloorGrant> {
    let c: K8sClaims = serde_json::from_slice(payload).ok()?;
    let sa_name = c.k8s.serviceaccount.name.as_deref();
    let ok = c.iss == "https://kubernetes.default.svc.cluster.local"
        && c.aud.holds("vault")
        && times_ok(c.exp, c.nbf, c.iat)
        && c.exp - c.iat <= 7200.0
        && c.k8s.namespace == "payments"
        && sa_name == Some("api")
        && c.sub.starts_with("system:serviceaccount:payments:")
        && c.k8s.pod.as_ref().is_some_and(|p| p.name.is_some());
    if !ok {
        return None;
    }
    let mut metadata = vec![("pod".to_string(), c.k8s.pod?.name?.into_owned())];
    if let Some(node) = c.k8s.node.and_then(|n| n.name) {
        metadata.push(("node".to_string(), node.into_owned()));
    }
    metadata.push(("service_account_uid".to_string(), c.k8s.serviceaccount.uid?.into_owned()));
    Some(FloorGrant {
        identity: format!("k8s/{}/{}", c.k8s.namespace, sa_name?),
        user: None,
        metadata,
        policies: vec!["payments-db-creds".to_string()],
    })
}
