//! Inputs shared by the benchmarks: generated policy sets of any size (here), the three roles
//! written in every language compared (`peers`), and signed tokens with their keys (`tokens`).

use std::fmt::Write;

pub mod peers;
pub mod tokens;

/// How much each generated role says.
#[derive(Clone, Copy, Debug)]
pub enum RoleShape {
    /// What most Vault or Strongbox roles hold: provider, audience, two bound claims, identity,
    /// policies (about 230 bytes).
    Typical,
    /// A role like the richest example policies: five conditions of different kinds (equality,
    /// glob, membership, negation, presence), identity, a metadata mapping, policies and token
    /// settings (about 450 bytes).
    Rich,
}

/// A policy set with `roles` roles spread over `issuers` providers, as one file's text.
pub fn generated_policy_set(roles: usize, issuers: usize, shape: RoleShape) -> String {
    let issuers = issuers.max(1);
    let mut out = String::with_capacity(roles * 500 + issuers * 300);
    for p in 0..issuers {
        let _ = write!(
            out,
            "provider issuer-{p} {{\n  issuer = \"https://issuer-{p}.example.com\"\n  keys {{\n    jwks_url = \"https://issuer-{p}.example.com/keys\"\n    refresh = 1h\n  }}\n  algorithms = [RS256, ES256]\n  required_time_claims = [exp, iat]\n}}\n\n"
        );
    }
    for r in 0..roles {
        let p = r % issuers;
        let _ = match shape {
            RoleShape::Typical => write!(
                out,
                "role role-{r} {{\n  provider = issuer-{p}\n  audience = \"service-{r}\"\n  require {{\n    claims.project_path == \"group-{p}/project-{r}\"\n    claims.ref == \"main\"\n  }}\n  identity = \"ci/\" + claims.project_path\n  policies = [\"deploy-{r}\"]\n}}\n\n"
            ),
            RoleShape::Rich => write!(
                out,
                "role role-{r} {{\n  provider = issuer-{p}\n  audience = \"service-{r}\"\n  require {{\n    claims.project_path == \"group-{p}/project-{r}\"\n    claims.ref glob \"refs/heads/release-*\"\n    claims.environment in [\"prod\", \"staging\"]\n    not claims.actor == \"dependabot[bot]\"\n    claims.pipeline_id exists\n  }}\n  identity = \"ci/\" + claims.project_path\n  metadata {{\n    pipeline = claims.pipeline_id\n  }}\n  policies = [\"deploy-{r}\"]\n  token {{\n    ttl = 15m\n  }}\n}}\n\n"
            ),
        };
    }
    out
}

/// A global allocator that counts the bytes currently allocated, for the memory figures of the
/// benchmarks: `#[global_allocator] static ALLOCATOR: CountingAllocator = CountingAllocator;`
/// in a bench, then [`live_bytes`] before and after building something.
pub struct CountingAllocator;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

/// Bytes currently allocated through [`CountingAllocator`].
pub fn live_bytes() -> isize {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}
