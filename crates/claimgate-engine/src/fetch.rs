//! Fetching key sets over HTTPS: one client per trust configuration (the default roots, or a
//! pinned CA and only that CA), one deadline per fetch (connect, TLS, headers and body), a size
//! bound enforced while the body streams in, no redirects, no proxies from the environment, and
//! the transport rule of the checker (`https`, or `http` to loopback only) applied to every URL,
//! including the `jwks_uri` a discovery document names.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use claimgate_jose::{KeyLimits, KeySet};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// Why a key set could not be fetched. The messages name the URL and the cause, never key
/// material, and are meant for operators (logs, readiness), not for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FetchError {
    #[error("`{url}` may not serve keys: {reason}")]
    Transport { url: String, reason: &'static str },
    #[error("`{url}`: the request did not complete within {seconds}s")]
    Timeout { url: String, seconds: u64 },
    #[error("`{url}`: cannot connect: {detail}")]
    Connect { url: String, detail: String },
    #[error("`{url}` answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("`{url}`: the response is larger than {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("`{url}`: cannot read the response: {detail}")]
    Body { url: String, detail: String },
    #[error("`{url}` is not a usable JWK Set: {detail}")]
    Keys { url: String, detail: String },
    #[error("`{url}` is not an OpenID discovery document: {detail}")]
    Discovery { url: String, detail: String },
    #[error("`{url}` names issuer `{found}`, but the provider trusts `{expected}`")]
    IssuerMismatch { url: String, found: String, expected: String },
    #[error("the pinned CA is not usable: {0}")]
    Ca(String),
    #[error("no trust anchors: pin a CA with `ca_pem` or `ca_file`, or build with the `webpki-roots` feature")]
    NoRoots,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// An HTTPS client for key sets, with the trust anchors of one key source.
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: HttpsClient,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fetcher")
    }
}

/// What a successful fetch returned.
pub(crate) struct Fetched {
    pub(crate) keys: KeySet,
    /// `Cache-Control: max-age` of the JWK Set response, if any (`no-cache`/`no-store` give 0).
    pub(crate) max_age: Option<Duration>,
}

impl Fetcher {
    /// A client that trusts exactly the certificates in `pinned_ca_pem` when given, the
    /// compiled-in web roots otherwise. Never installs a process-wide crypto provider.
    pub(crate) fn new(pinned_ca_pem: Option<&[u8]>) -> Result<Fetcher, FetchError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        match pinned_ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| FetchError::Ca(format!("not PEM certificates: {e}")))?;
                    roots.add(cert).map_err(|e| FetchError::Ca(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(FetchError::Ca("no certificate found".to_string()));
                }
            }
            None => {
                #[cfg(feature = "webpki-roots")]
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                if roots.is_empty() {
                    return Err(FetchError::NoRoots);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Fetcher { client })
    }

    /// GETs `url` within `timeout`, reading at most `limits.max_bytes` of body.
    async fn get(
        &self,
        url: &url::Url,
        timeout: Duration,
        max: usize,
    ) -> Result<(Bytes, Option<Duration>), FetchError> {
        check_transport(url)?;
        let text = url.as_str().to_string();
        let request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json, application/jwk-set+json")
            .header(http::header::USER_AGENT, concat!("claimgate/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Connect { url: text.clone(), detail: e.to_string() })?;
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Connect { url: text.clone(), detail: error_chain(&e) })?;
            let status = response.status();
            if !status.is_success() {
                return Err(FetchError::Status { url: text.clone(), status: status.as_u16() });
            }
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(FetchError::TooLarge { url: text.clone(), max });
            }
            let max_age = max_age(response.headers().get(http::header::CACHE_CONTROL));
            let body = Limited::new(response.into_body(), max).collect().await.map_err(|e| {
                if e.is::<LengthLimitError>() {
                    FetchError::TooLarge { url: text.clone(), max }
                } else {
                    FetchError::Body { url: text.clone(), detail: e.to_string() }
                }
            })?;
            Ok((body.to_bytes(), max_age))
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { url: text, seconds: timeout.as_secs().max(1) }),
        }
    }

    /// Fetches a JWK Set from `url`.
    pub(crate) async fn jwks(
        &self,
        url: &url::Url,
        timeout: Duration,
        limits: &KeyLimits,
    ) -> Result<Fetched, FetchError> {
        let (body, max_age) = self.get(url, timeout, limits.max_bytes).await?;
        let keys = KeySet::from_jwks_json_with_limits(&body, limits)
            .map_err(|e| FetchError::Keys { url: url.to_string(), detail: e.to_string() })?;
        Ok(Fetched { keys, max_age })
    }

    /// Fetches an OpenID discovery document, checks that its `issuer` is one the provider trusts
    /// (exactly), then fetches the JWK Set its `jwks_uri` names, with the same trust anchors,
    /// both within one deadline.
    pub(crate) async fn discovery(
        &self,
        url: &url::Url,
        issuers: &[String],
        timeout: Duration,
        limits: &KeyLimits,
    ) -> Result<Fetched, FetchError> {
        // One deadline for the document and the key set together.
        let url_text = url.to_string();
        match tokio::time::timeout(timeout, self.discover(url, issuers, timeout, limits)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { url: url_text, seconds: timeout.as_secs().max(1) }),
        }
    }

    async fn discover(
        &self,
        url: &url::Url,
        issuers: &[String],
        timeout: Duration,
        limits: &KeyLimits,
    ) -> Result<Fetched, FetchError> {
        let document_url = discovery_document_url(url);
        let (body, _) = self.get(&document_url, timeout, limits.max_bytes).await?;
        let bad = |detail: String| FetchError::Discovery { url: document_url.to_string(), detail };
        let document = claimgate_jose::json::parse_object(&body, 16).map_err(|e| bad(e.to_string()))?;
        let issuer = match document.get("issuer") {
            Some(serde_json::Value::String(issuer)) => issuer,
            _ => return Err(bad("no `issuer` string".to_string())),
        };
        if !issuers.iter().any(|i| i == issuer) {
            return Err(FetchError::IssuerMismatch {
                url: document_url.to_string(),
                found: claimgate_jose::snippet(issuer),
                expected: issuers.first().cloned().unwrap_or_default(),
            });
        }
        let jwks_uri = match document.get("jwks_uri") {
            Some(serde_json::Value::String(uri)) => {
                url::Url::parse(uri).map_err(|e| bad(format!("`jwks_uri` is not a URL: {e}")))?
            }
            _ => return Err(bad("no `jwks_uri` string".to_string())),
        };
        // Plain http is for loopback tests: a document fetched over https may not send us there.
        if jwks_uri.scheme() == "http" && url.scheme() != "http" {
            return Err(FetchError::Transport {
                url: jwks_uri.to_string(),
                reason: "a discovery document fetched over https names a plain http jwks_uri",
            });
        }
        self.jwks(&jwks_uri, timeout, limits).await
    }
}

/// OpenID Connect Discovery 1.0 section 4: the document lives at the issuer URL (without a
/// trailing `/`) followed by `/.well-known/openid-configuration`; a URL already ending so is
/// taken as it is.
pub(crate) fn discovery_document_url(url: &url::Url) -> url::Url {
    const WELL_KNOWN: &str = "/.well-known/openid-configuration";
    if url.path().ends_with(WELL_KNOWN) {
        return url.clone();
    }
    let mut document = url.clone();
    let path = format!("{}{WELL_KNOWN}", url.path().trim_end_matches('/'));
    document.set_path(&path);
    document
}

fn check_transport(url: &url::Url) -> Result<(), FetchError> {
    claimgate::check::key_url_transport(url).map_err(|problem| FetchError::Transport {
        url: url.to_string(),
        reason: match problem {
            claimgate::check::KeyUrlProblem::NotHttps => "keys are fetched over https only (http to loopback hosts)",
            claimgate::check::KeyUrlProblem::CredentialsOrFragment => "the URL carries credentials or a fragment",
        },
    })
}

/// `max-age` of a `Cache-Control` header; `no-cache` and `no-store` mean 0.
pub(crate) fn max_age(header: Option<&http::HeaderValue>) -> Option<Duration> {
    let text = header?.to_str().ok()?;
    let mut age = None;
    for directive in text.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            age = value.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls() {
        let u = |s: &str| discovery_document_url(&url::Url::parse(s).unwrap()).to_string();
        assert_eq!(
            u("https://token.actions.githubusercontent.com"),
            "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
        );
        assert_eq!(
            u("https://example.okta.com/oauth2/default/"),
            "https://example.okta.com/oauth2/default/.well-known/openid-configuration"
        );
        assert_eq!(
            u("https://login.example.com/t/v2.0/.well-known/openid-configuration"),
            "https://login.example.com/t/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn cache_control() {
        let h = |s: &str| max_age(Some(&http::HeaderValue::from_str(s).unwrap()));
        assert_eq!(h("public, max-age=3600"), Some(Duration::from_secs(3600)));
        assert_eq!(h("max-age=60, must-revalidate"), Some(Duration::from_secs(60)));
        assert_eq!(h("no-store"), Some(Duration::ZERO));
        assert_eq!(h("private"), None);
        assert_eq!(h("max-age=abc"), None);
    }
}
