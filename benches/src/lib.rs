//! Inputs shared by the benchmarks: generated policy sets of any size.

use std::fmt::Write;

/// A policy set with `roles` roles spread over `issuers` providers, written the way the example
/// policies are (bound audience, five conditions of different kinds, identity, metadata, policies,
/// token settings). Returned as one file's text.
pub fn generated_policy_set(roles: usize, issuers: usize) -> String {
    let issuers = issuers.max(1);
    let mut out = String::with_capacity(roles * 700 + issuers * 300);
    for p in 0..issuers {
        let _ = write!(
            out,
            "provider issuer-{p} {{\n  issuer = \"https://issuer-{p}.example.com\"\n  keys {{\n    jwks_url = \"https://issuer-{p}.example.com/keys\"\n    refresh = 1h\n  }}\n  algorithms = [RS256, ES256]\n  required_time_claims = [exp, iat]\n}}\n\n"
        );
    }
    for r in 0..roles {
        let p = r % issuers;
        let _ = write!(
            out,
            "role role-{r} {{\n  provider = issuer-{p}\n  audience = \"service-{r}\"\n  require {{\n    claims.project_path == \"group-{p}/project-{r}\"\n    claims.ref glob \"refs/heads/release-*\"\n    claims.environment in [\"prod\", \"staging\"]\n    not claims.actor == \"dependabot[bot]\"\n    claims.pipeline_id exists\n  }}\n  identity = \"ci/\" + claims.project_path\n  metadata {{\n    pipeline = claims.pipeline_id\n  }}\n  policies = [\"deploy-{r}\"]\n  token {{\n    ttl = 15m\n  }}\n}}\n\n"
        );
    }
    out
}
