//! The VM allocates nothing per condition: deciding with sixty conditions allocates exactly as
//! often as deciding with two (the grant's strings are the only allocations of an allow). This
//! counts allocations; it times nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use claimgate::Policy;
use claimgate::payload::Scratch;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn role(name: &str, conditions: usize) -> String {
    let mut require = String::new();
    for i in 0..conditions {
        let condition = match i % 6 {
            0 => "claims.ref == \"main\"".to_string(),
            1 => "claims.groups contains any [\"a\", \"b\"]".to_string(),
            2 => "claims.project glob \"group/*\"".to_string(),
            3 => "not claims.actor in [\"bot\", \"other-bot\"]".to_string(),
            4 => "any {\n claims.n >= 10\n claims.sub matches \"x[0-9]+\"\n }".to_string(),
            _ => format!("claims.extra_{i} absent"),
        };
        require.push_str(&condition);
        require.push('\n');
    }
    format!(
        "role {name} {{\n provider = p\n audience = \"svc\"\n require {{\n{require}}}\n identity = \"ci/\" + claims.project\n policies = [\"deploy\"]\n}}\n"
    )
}

#[test]
fn deciding_allocates_nothing_per_condition() {
    let text = format!(
        "provider p {{\n issuer = \"https://i.example.com\"\n keys {{\n jwks_url = \"https://i.example.com/k\"\n }}\n}}\n{}{}",
        role("few", 2),
        role("many", 60)
    );
    let policy = Policy::from_sources([("alloc.cg", text.as_str())]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let program = policy.compile().unwrap();
    let payload = br#"{"iss":"https://i.example.com","aud":"svc","exp":2000,"ref":"main","groups":["b"],"project":"group/p","actor":"me","n":12,"sub":"x1"}"#;
    let mut scratch = Scratch::default();
    let count = |role: &str, scratch: &mut Scratch| {
        // Warm the scratch buffers and the regex caches first.
        assert!(program.decide(payload, Some(role), 1_000, scratch).is_allow());
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let decision = program.decide(payload, Some(role), 1_000, scratch);
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        assert!(decision.is_allow());
        drop(decision);
        after - before
    };
    let few = count("few", &mut scratch);
    let many = count("many", &mut scratch);
    assert_eq!(few, many, "2 conditions: {few} allocations, 60 conditions: {many}");
    // The grant: role name, identity, one policy, the policies list, token settings.
    assert!(few <= 8, "{few} allocations for one allow");
}
