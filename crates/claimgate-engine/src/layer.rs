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
//! Answers, each with an empty body (the reason goes to the logs, not to the client), as RFC
//! 6750 says:
//! - no bearer token: 401 with `WWW-Authenticate: Bearer`;
//! - more than one `Authorization` header, or one that is not visible ASCII: 400 with
//!   `WWW-Authenticate: Bearer error="invalid_request"` (a proxy and this layer could read
//!   different ones);
//! - a token that is not a valid credential here (malformed, bad signature, expired, another
//!   issuer or audience, beyond the limits): 401 with `Bearer error="invalid_token"`;
//! - a valid token the policy refuses (a condition, `bound_cidrs`): 403 with
//!   `Bearer error="insufficient_scope"`, so that a client does not fetch a new token of the
//!   same workload and try again, as it may after a 401;
//! - its issuer's keys unavailable: 503;
//! - a role given to [`AuthLayer::role`] that the policy set does not define (a mistake of the
//!   service, or a reload that removed it): 500, logged as an error.
//!
//! An allowed request reaches the inner service with the [`Grant`] in its extensions (as
//! `Arc<Grant>`).
//!
//! **Which roles admit a request.** [`AuthLayer::new`] selects the role automatically: the
//! first role of the token's provider that allows it, whatever the role is for. When one policy
//! set holds roles for several services or purposes, pin the role with [`AuthLayer::role`], or
//! check [`Grant::role`] in the handler.
//!
//! **Client addresses.** Roles with `bound_cidrs` are checked against the address in
//! [`ClientAddress`] (or axum's `ConnectInfo`). Behind a reverse proxy that is the proxy's
//! address: put the client's own in [`ClientAddress`] from a header only that proxy sets.

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
    /// Authenticate with automatic role selection: any role of the token's provider that
    /// allows it admits the request (see the module documentation).
    pub fn new(engine: Engine) -> AuthLayer {
        AuthLayer { engine, role: None }
    }

    /// Authenticate as this role only.
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

/// Why a request has no bearer token to authenticate.
#[derive(Debug, PartialEq, Eq)]
enum NoBearer {
    /// No `Authorization` header, another scheme, or an empty token.
    Missing,
    /// Several `Authorization` headers, or one that is not visible ASCII.
    Invalid,
}

/// The bearer token of a request: `Authorization: Bearer TOKEN` (scheme case-insensitive, as
/// RFC 7235 says), nothing else (no query parameter, no cookie).
fn bearer(headers: &http::HeaderMap) -> Result<&str, NoBearer> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).into_iter();
    let value = values.next().ok_or(NoBearer::Missing)?;
    if values.next().is_some() {
        return Err(NoBearer::Invalid);
    }
    let value = value.to_str().map_err(|_| NoBearer::Invalid)?;
    let (scheme, token) = value.split_once(' ').ok_or(NoBearer::Missing)?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty()).ok_or(NoBearer::Missing)
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

/// An empty answer with this status and, when given, this `WWW-Authenticate` challenge.
fn refusal<B: Default>(status: http::StatusCode, challenge: Option<&'static str>) -> http::Response<B> {
    let mut response = http::Response::new(B::default());
    *response.status_mut() = status;
    if let Some(challenge) = challenge {
        response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static(challenge));
    }
    response
}

/// The answer to a refused login (see the module documentation).
fn refused<B: Default>(error: &crate::AuthError) -> http::Response<B> {
    use http::StatusCode;
    match error.kind() {
        ErrorKind::KeysUnavailable => refusal(StatusCode::SERVICE_UNAVAILABLE, None),
        ErrorKind::Forbidden => refusal(StatusCode::FORBIDDEN, Some("Bearer error=\"insufficient_scope\"")),
        // The only request error is the layer's own role, which the set does not define: the
        // service is misconfigured, not the client.
        ErrorKind::BadRequest if error.code() == claimgate::DenyCode::UnknownRole => {
            tracing::error!(
                "the role given to AuthLayer::role is not defined by the policy set; every request is refused"
            );
            refusal(StatusCode::INTERNAL_SERVER_ERROR, None)
        }
        _ => refusal(StatusCode::UNAUTHORIZED, Some("Bearer error=\"invalid_token\"")),
    }
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
            let token = match bearer(request.headers()) {
                Ok(token) => token.to_string(),
                Err(NoBearer::Missing) => return Ok(refusal(http::StatusCode::UNAUTHORIZED, Some("Bearer"))),
                Err(NoBearer::Invalid) => {
                    return Ok(refusal(http::StatusCode::BAD_REQUEST, Some("Bearer error=\"invalid_request\"")));
                }
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
                Err(error) => Ok(refused(&error)),
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
        // Without the layer there is no grant: refuse rather than serve unauthenticated. That
        // is the service's mistake (a route the layer does not cover), not the client's.
        parts.extensions.get::<Arc<Grant>>().cloned().map(Authenticated).ok_or_else(|| {
            tracing::error!("Authenticated on a route that AuthLayer does not cover; the request is refused");
            http::StatusCode::INTERNAL_SERVER_ERROR
        })
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
        assert_eq!(bearer(&headers("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
        assert_eq!(bearer(&headers("bearer  abc")), Ok("abc"));
        assert_eq!(bearer(&headers("Basic dXNlcjpwYXNz")), Err(NoBearer::Missing));
        assert_eq!(bearer(&headers("Bearer")), Err(NoBearer::Missing));
        assert_eq!(bearer(&headers("Bearer ")), Err(NoBearer::Missing));
        assert_eq!(bearer(&http::HeaderMap::new()), Err(NoBearer::Missing));
        // Two headers: a proxy may read the other one. Refused, whichever is first.
        let mut two = headers("Bearer a.b.c");
        two.append(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer d.e.f"));
        assert_eq!(bearer(&two), Err(NoBearer::Invalid));
        let opaque = http::HeaderValue::from_bytes(b"Bearer a\xffb").unwrap();
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, opaque);
        assert_eq!(bearer(&h), Err(NoBearer::Invalid));
    }
}
