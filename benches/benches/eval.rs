//! The evaluator: from payload bytes (JSON text after signature checking) to a decision.
//!
//! Goals (issue: compile policies to bytecode and evaluate them):
//! - the GitLab and GitHub example roles: under 1 µs, at most 1.5x a hand-written serde_json
//!   struct + if-statements version of the same rules (the floor, shared with `peers.rs`: see
//!   `claimgate_benches::peers`);
//! - automatic selection among 10,000 roles and compiling 10,000 roles (under 200 ms): measured
//!   in `scale.rs`; the comparison with Rego, CEL and Cedar is in `peers.rs`.

use claimgate::Policy;
use claimgate::payload::Scratch;
use claimgate::program::Program;
use claimgate_benches::peers::{NOW, floor_github_with, floor_gitlab};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn example_program() -> Program {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cg"))
        .collect();
    files.sort();
    let sources: Vec<(String, String)> =
        files.iter().map(|p| (p.display().to_string(), std::fs::read_to_string(p).unwrap())).collect();
    let policy = Policy::from_sources(sources);
    // The kubernetes policy names a key file relative to itself; key files are not read here.
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    policy.compile().unwrap()
}

/// The GitLab example payload (shared/examples/gitlab-ci.json), as the token carries it.
const GITLAB: &str = r#"{"iss":"https://gitlab.example.com","aud":"strongbox","sub":"project_path:mygroup/myproject:ref_type:branch:ref:main","jti":"235b3a54-1f3e-4b6a-9f0e-6c2d7f1e9a10","iat":1732350000,"nbf":1732349995,"exp":1732353600,"namespace_id":"72","namespace_path":"mygroup","project_id":"20","project_path":"mygroup/myproject","user_login":"sample-user","pipeline_id":"574","pipeline_source":"push","job_id":"302","ref":"main","ref_type":"branch","ref_path":"refs/heads/main","ref_protected":"true","environment":"production","environment_protected":"true","deployment_tier":"production","runner_id":1,"runner_environment":"gitlab-hosted","sha":"714a629c0b401fdce83e847fc9589983fc6f46bc","strongbox_policies":["reader","deployer"]}"#;

/// The GitHub example payload (shared/examples/github-actions.json).
const GITHUB: &str = r#"{"iss":"https://token.actions.githubusercontent.com","aud":"https://github.com/octo-org","sub":"repo:octo-org/octo-repo:environment:prod","jti":"6f4762ed-6f2a-4d3c-bb35-8e1ad2b3f9a1","iat":1732350000,"nbf":1732349700,"exp":1732350900,"repository":"octo-org/octo-repo","repository_id":"74","repository_owner":"octo-org","repository_owner_id":"65","repository_visibility":"private","ref":"refs/heads/main","ref_type":"branch","sha":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4","environment":"prod","event_name":"workflow_dispatch","workflow":"deploy","workflow_ref":"octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main","job_workflow_ref":"octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main","actor":"octocat","actor_id":"12","run_id":"5512","run_attempt":"2","runner_environment":"github-hosted"}"#;

fn examples(c: &mut Criterion) {
    let program = example_program();
    // The example GitHub role tests release tags with this regular expression.
    let release_tag = regex::Regex::new(r"^(?:refs/tags/v[0-9]+\.[0-9]+\.[0-9]+)$").unwrap();
    let floor_github = |payload: &[u8]| floor_github_with(payload, |git_ref| release_tag.is_match(git_ref));
    let mut scratch = Scratch::default();
    // Same decisions first, so that no benchmark times a failing path by accident.
    for (payload, role) in [(GITLAB, "gitlab-deploy-production"), (GITHUB, "github-deploy-prod")] {
        assert!(program.decide(payload.as_bytes(), Some(role), NOW, &mut scratch).is_allow(), "{role}");
        assert!(program.decide(payload.as_bytes(), None, NOW, &mut scratch).is_allow(), "{role} (auto)");
    }
    let floor = floor_gitlab(GITLAB.as_bytes()).unwrap();
    assert_eq!(floor.identity, "gitlab/mygroup/myproject");
    assert_eq!((floor.user.as_deref(), floor.metadata.len(), floor.policies.len()), (Some("sample-user"), 3, 3));
    for (git_ref, allowed) in [("refs/heads/main", true), ("refs/tags/v1.2.3", true), ("refs/tags/v1.x", false)] {
        let payload = GITHUB.replace("\"ref\":\"refs/heads/main\"", &format!("\"ref\":\"{git_ref}\""));
        let engine = program.decide(payload.as_bytes(), Some("github-deploy-prod"), NOW, &mut scratch).is_allow();
        assert_eq!((engine, floor_github(payload.as_bytes()).is_some()), (allowed, allowed), "{git_ref}");
    }
    assert!(floor_gitlab(GITLAB.replace("\"main\"", "\"dev\"").as_bytes()).is_none());

    let mut group = c.benchmark_group("eval/example");
    group.throughput(Throughput::Elements(1));
    group.bench_function("gitlab/claimgate", |b| {
        b.iter(|| {
            program.decide(std::hint::black_box(GITLAB.as_bytes()), Some("gitlab-deploy-production"), NOW, &mut scratch)
        })
    });
    group.bench_function("gitlab/claimgate-auto", |b| {
        b.iter(|| program.decide(std::hint::black_box(GITLAB.as_bytes()), None, NOW, &mut scratch))
    });
    group.bench_function("gitlab/hand-written", |b| b.iter(|| floor_gitlab(std::hint::black_box(GITLAB.as_bytes()))));
    group.bench_function("github/claimgate", |b| {
        b.iter(|| {
            program.decide(std::hint::black_box(GITHUB.as_bytes()), Some("github-deploy-prod"), NOW, &mut scratch)
        })
    });
    group.bench_function("github/hand-written", |b| b.iter(|| floor_github(std::hint::black_box(GITHUB.as_bytes()))));
    let denied = GITLAB.replace("\"ref\":\"main\"", "\"ref\":\"feature\"");
    group.bench_function("gitlab/claimgate-deny", |b| {
        b.iter(|| {
            program.decide(std::hint::black_box(denied.as_bytes()), Some("gitlab-deploy-production"), NOW, &mut scratch)
        })
    });
    group.finish();
}

criterion_group!(benches, examples);
criterion_main!(benches);
