//! Scale: compile time, evaluation time and memory for policy sets of 1, 100, 1,000 and 10,000
//! generated roles (`RoleShape::Rich`: five conditions, identity, metadata, policies, token
//! settings), spread over up to 100 issuers.
//!
//! - `scale/compile/N`: `Policy::compile` of a checked set (checked model to `Program`);
//! - `scale/load/N`: parse + check + compile from the policy text;
//! - `scale/eval-N/named` and `scale/eval-N/automatic`: deciding the last role's token by name
//!   and by automatic selection;
//! - `scale/eval-N/automatic-shared-audience`: the worst case for selection, every role under one
//!   issuer with one audience, so that only the conditions tell them apart (the token matches the
//!   last role; sets up to 1,000 roles).
//!
//! Memory: the heap a compiled `Program` keeps (a counting allocator around `compile`) and its
//! size in the file format, per role; printed before the timings and written to
//! `target/criterion/claimgate-memory.json` for `benches/results.py`. The counting allocator adds
//! one relaxed atomic add per allocation to everything timed here.
//!
//! Goal: automatic selection among 10,000 roles under 2x a single named role.
//!
//! Run: cargo bench -p claimgate-benches --bench scale -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use claimgate::Policy;
use claimgate::payload::Scratch;
use claimgate_benches::{RoleShape, generated_policy_set};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[global_allocator]
static ALLOCATOR: claimgate_benches::CountingAllocator = claimgate_benches::CountingAllocator;

const NOW: i64 = 1_732_350_100;
const SIZES: [usize; 4] = [1, 100, 1_000, 10_000];

fn issuers(roles: usize) -> usize {
    roles.min(100)
}

/// A token for role `role-{r}` of the generated rich set.
fn payload(r: usize, issuers: usize, audience: &str) -> String {
    let p = r % issuers;
    format!(
        r#"{{"iss":"https://issuer-{p}.example.com","aud":"{audience}","sub":"x","iat":1732350000,"exp":1732353600,"project_path":"group-{p}/project-{r}","ref":"refs/heads/release-2","environment":"prod","actor":"octocat","pipeline_id":"574"}}"#
    )
}

fn policy(text: &str) -> Policy {
    let policy = Policy::from_sources([("generated.cg", text)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    policy
}

/// Every role under one issuer with the audience "shared".
fn shared_audience_set(roles: usize) -> String {
    let text = generated_policy_set(roles, 1, RoleShape::Rich);
    text.lines()
        .map(|l| if l.starts_with("  audience = \"service-") { "  audience = \"shared\"" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

fn memory() {
    let mut rows = Vec::new();
    for roles in SIZES {
        let policy = policy(&generated_policy_set(roles, issuers(roles), RoleShape::Rich));
        let before = claimgate_benches::live_bytes();
        let program = policy.compile().unwrap();
        let heap = claimgate_benches::live_bytes() - before;
        let file = program.to_bytes().len();
        eprintln!(
            "memory: {roles} rich roles: compiled program keeps {heap} heap bytes ({} per role); file format {file} bytes ({} per role)",
            heap / roles as isize,
            file / roles
        );
        rows.push(format!(
            r#"{{"roles":{roles},"heap_bytes":{heap},"heap_bytes_per_role":{},"file_bytes":{file},"file_bytes_per_role":{}}}"#,
            heap / roles as isize,
            file / roles
        ));
        drop(program);
    }
    // target/release/deps/scale-* -> target/criterion/claimgate-memory.json
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).or_else(|| {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.parent()?.to_path_buf())
    });
    if let Some(dir) = target.map(|t| t.join("criterion")) {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("claimgate-memory.json"), format!("[{}]\n", rows.join(",\n")));
    }
}

fn compile(c: &mut Criterion) {
    memory();
    let mut group = c.benchmark_group("scale/compile");
    group.sample_size(10);
    for roles in SIZES {
        let policy = policy(&generated_policy_set(roles, issuers(roles), RoleShape::Rich));
        group.bench_with_input(BenchmarkId::from_parameter(roles), &policy, |b, policy| {
            b.iter_with_large_drop(|| policy.compile().unwrap())
        });
    }
    group.finish();
    let mut group = c.benchmark_group("scale/load");
    group.sample_size(10);
    for roles in SIZES {
        let text = generated_policy_set(roles, issuers(roles), RoleShape::Rich);
        group.bench_with_input(BenchmarkId::from_parameter(roles), &text, |b, text| {
            b.iter_with_large_drop(|| Policy::from_sources([("generated.cg", text.as_str())]).compile().unwrap())
        });
    }
    group.finish();
}

fn eval(c: &mut Criterion) {
    let mut scratch = Scratch::default();
    for roles in SIZES {
        let program = policy(&generated_policy_set(roles, issuers(roles), RoleShape::Rich)).compile().unwrap();
        // The last role of the last issuer: automatic selection must not scan to find it.
        let r = roles - 1;
        let token = payload(r, issuers(roles), &format!("service-{r}"));
        let named = format!("role-{r}");
        assert!(program.decide(token.as_bytes(), Some(&named), NOW, &mut scratch).is_allow(), "{roles} named");
        assert!(program.decide(token.as_bytes(), None, NOW, &mut scratch).is_allow(), "{roles} automatic");
        let mut group = c.benchmark_group(format!("scale/eval-{roles}"));
        group.bench_function("named", |b| {
            b.iter(|| program.decide(black_box(token.as_bytes()), Some(&named), NOW, &mut scratch))
        });
        group.bench_function("automatic", |b| {
            b.iter(|| program.decide(black_box(token.as_bytes()), None, NOW, &mut scratch))
        });
        if roles <= 1_000 {
            let shared = policy(&shared_audience_set(roles)).compile().unwrap();
            let token = payload(r, 1, "shared");
            let decision = shared.decide(token.as_bytes(), None, NOW, &mut scratch);
            assert!(decision.is_allow(), "{roles} shared audience: {decision:?}");
            group.bench_function("automatic-shared-audience", |b| {
                b.iter(|| shared.decide(black_box(token.as_bytes()), None, NOW, &mut scratch))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, compile, eval);
criterion_main!(benches);
