//! An API service that accepts identity-provider access tokens as `Authorization: Bearer`,
//! decided by a claimgate policy (see `examples/api-policy/api.cg`).
//!
//! ```text
//! cargo run -p claimgate-engine --features axum --example api -- POLICY_DIR [ADDR]
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/whoami
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use claimgate_engine::layer::{AuthLayer, Authenticated};
use claimgate_engine::{Engine, PolicySource};

async fn whoami(Authenticated(grant): Authenticated) -> String {
    format!("{} (role {})\n", grant.identity(), grant.role())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let policies = args.next().ok_or("usage: api POLICY_DIR [ADDR]")?;
    let address: SocketAddr = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_string()).parse()?;
    // Problems in the policies stop the service here, located, as `claimgate check` shows them.
    let engine = Engine::builder(PolicySource::dir(policies)).build().await?;
    for (provider, status) in engine.readiness() {
        eprintln!("provider {provider}: {status:?}");
    }
    let app = Router::new().route("/whoami", get(whoami)).layer(AuthLayer::new(engine));
    let listener = tokio::net::TcpListener::bind(address).await?;
    eprintln!("listening on http://{address}");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
