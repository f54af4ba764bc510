//! A tower layer that authenticates `Authorization: Bearer` tokens with an [`Engine`], and (with
//! the `axum` feature) an extractor for the grant.
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn example(engine: claimgate_engine::Engine) {
//! use axum::{Router, routing::get};
//! use claimgate_engine::layer::{AuthLayer, Authenticated};
//!
//! async fn whoami(Authenticated(grant): Authenticated) -> String {
//!     grant.identity().to_string()
//! }
//!
//! let app: Router = Router::new().route("/whoami", get(whoami)).layer(AuthLayer::new(engine));
//! # }
//! ```
//!
//! A request without a bearer token gets 401 with `WWW-Authenticate: Bearer`; a refused token
//! 401 with `WWW-Authenticate: Bearer error="invalid_token"` (or 503 when its issuer's keys are
//! unavailable), and an empty body: the reason goes to the logs, not to the client. An allowed
//! request reaches the inner service with the [`Grant`] in its extensions (as `Arc<Grant>`).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use claimgate::decision::Grant;

use crate::{AuthRequest, Engine, ErrorKind};

/// The client's address, for roles with `bound_cidrs`: put it in the request's extensions
/// before this layer (with the `axum` feature, axum's `ConnectInfo<SocketAddr>` is read too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Authenticates every request with the engine; see the module documentation.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    engine: Engine,
    role: Option<Arc<str>>,
}

impl AuthLayer {
    /// Authenticate with automatic role selection.
    pub fn new(engine: Engine) -> AuthLayer {
        AuthLayer { engine, role: None }
    }

    /// Authenticate as this role.
    pub fn role(mut self, role: impl Into<Arc<str>>) -> AuthLayer {
        self.role = Some(role.into());
        self
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth { inner, engine: self.engine.clone(), role: self.role.clone() }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    engine: Engine,
    role: Option<Arc<str>>,
}

/// The bearer token of a request: `Authorization: Bearer TOKEN` (scheme case-insensitive, as
/// RFC 7235 says), nothing else (no query parameter, no cookie).
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn client_address<B>(request: &http::Request<B>) -> Option<IpAddr> {
    if let Some(ClientAddress(address)) = request.extensions().get::<ClientAddress>() {
        return Some(*address);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(address)) =
        request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(address.ip());
    }
    None
}

fn refusal<B: Default>(status: u16, challenge: &'static str) -> http::Response<B> {
    let mut response = http::Response::new(B::default());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::UNAUTHORIZED);
    if status == 401 {
        response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static(challenge));
    }
    response
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Auth<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone waits for readiness next time; this one was made ready by poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let engine = self.engine.clone();
        let role = self.role.clone();
        Box::pin(async move {
            let Some(token) = bearer(request.headers()).map(str::to_string) else {
                return Ok(refusal(401, "Bearer"));
            };
            let mut login = AuthRequest::new(&token);
            if let Some(role) = role.as_deref() {
                login = login.role(role);
            }
            if let Some(address) = client_address(&request) {
                login = login.client_address(address);
            }
            match engine.authenticate(login).await {
                Ok(grant) => {
                    request.extensions_mut().insert(Arc::new(grant));
                    inner.call(request).await
                }
                Err(error) if error.kind() == ErrorKind::KeysUnavailable => Ok(refusal(503, "")),
                Err(_) => Ok(refusal(401, "Bearer error=\"invalid_token\"")),
            }
        })
    }
}

/// The grant of an authenticated request (axum extractor; needs [`AuthLayer`] in front).
#[cfg(feature = "axum")]
#[derive(Clone, Debug)]
pub struct Authenticated(pub Arc<Grant>);

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Authenticated {
    type Rejection = http::StatusCode;

    async fn from_request_parts(parts: &mut http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Without the layer there is no grant: refuse rather than serve unauthenticated.
        parts.extensions.get::<Arc<Grant>>().cloned().map(Authenticated).ok_or(http::StatusCode::UNAUTHORIZED)
    }
}

/// The grant of an authenticated request, from its extensions.
pub fn grant<B>(request: &http::Request<B>) -> Option<&Grant> {
    request.extensions().get::<Arc<Grant>>().map(|g| &**g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let headers = |value: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, http::HeaderValue::from_str(value).unwrap());
            h
        };
        assert_eq!(bearer(&headers("Bearer abc.def.ghi")), Some("abc.def.ghi"));
        assert_eq!(bearer(&headers("bearer  abc")), Some("abc"));
        assert_eq!(bearer(&headers("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer(&headers("Bearer")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&http::HeaderMap::new()), None);
    }
}
