//! A real HTTPS server for key sources, started by the tests on 127.0.0.1 with a CA made at test
//! time, and Ed25519 signers for tokens.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// A CA and a server certificate for 127.0.0.1 and localhost, made now.
pub struct Pki {
    pub ca_pem: String,
    /// The server certificate and its key, as PEM (for servers that are not ours).
    pub leaf_pem: String,
    pub leaf_key_pem: String,
    leaf_der: rustls::pki_types::CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

pub fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair as CertKey, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "claimgate test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca, CertKey::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = CertKey::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_pem: leaf_cert.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        leaf_der: leaf_cert.der().clone(),
        leaf_key: leaf_key.serialize_der(),
    }
}

/// What the server answers on one path.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub cache_control: Option<String>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: impl Into<String>) -> Reply {
        Reply { status: 200, body: Bytes::from(body.into()), cache_control: None, delay: Duration::ZERO }
    }
}

/// An HTTPS server on 127.0.0.1 whose answers the test changes while it runs; it counts the
/// requests it receives, per path.
pub struct Server {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    pub async fn start(pki: &Pki) -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![pki.leaf_der.clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(pki.leaf_key.clone().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let total = Arc::new(AtomicUsize::new(0));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        // Stopping also ends the connections already open (a client's pooled keep-alive
        // connection must not outlive the server).
        let (closing, closed) = tokio::sync::watch::channel(false);
        let (r, h, t) = (routes.clone(), hits.clone(), total.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => {
                        let _ = closing.send(true);
                        break;
                    }
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let (acceptor, r, h, t) = (acceptor.clone(), r.clone(), h.clone(), t.clone());
                        let mut closed = closed.clone();
                        tokio::spawn(async move {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                                let (r, h, t) = (r.clone(), h.clone(), t.clone());
                                async move {
                                    let path = request.uri().path().to_string();
                                    t.fetch_add(1, Ordering::SeqCst);
                                    *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                                    let reply = r.lock().unwrap().get(&path).cloned();
                                    let reply = reply.unwrap_or(Reply { status: 404, body: Bytes::new(), cache_control: None, delay: Duration::ZERO });
                                    tokio::time::sleep(reply.delay).await;
                                    let mut response = hyper::Response::builder().status(reply.status);
                                    if let Some(cc) = &reply.cache_control {
                                        response = response.header("cache-control", cc);
                                    }
                                    Ok::<_, std::convert::Infallible>(response.body(http_body_util::Full::new(reply.body)).unwrap())
                                }
                            });
                            let connection = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
                            tokio::select! {
                                _ = connection => {}
                                _ = closed.wait_for(|c| *c) => {}
                            }
                        });
                    }
                }
            }
        });
        Server { addr, routes, hits, total, stop: Some(stop) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Stops accepting connections (the port is closed).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An Ed25519 key that signs tokens under a `kid`.
pub struct Signer {
    pub kid: String,
    pair: Ed25519KeyPair,
}

impl Signer {
    pub fn new(kid: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Signer { kid: kid.to_string(), pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap() }
    }

    pub fn jwk(&self) -> String {
        format!(
            r#"{{"kty":"OKP","crv":"Ed25519","kid":"{}","use":"sig","x":"{}"}}"#,
            self.kid,
            B64.encode(self.pair.public_key().as_ref())
        )
    }

    pub fn sign(&self, claims: &str) -> String {
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, self.kid);
        let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

/// A JWK Set of these signers' public keys.
pub fn jwks(signers: &[&Signer]) -> String {
    let keys: Vec<String> = signers.iter().map(|s| s.jwk()).collect();
    format!(r#"{{"keys":[{}]}}"#, keys.join(","))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Claims for `iss`, valid for ten minutes.
pub fn claims(iss: &str, sub: &str) -> String {
    format!(r#"{{"iss":"{iss}","sub":"{sub}","aud":"api","iat":{},"exp":{}}}"#, now(), now() + 600)
}

/// A PEM text as a policy's multi-line string, indented to sit inside `keys { }`.
pub fn indented(pem: &str) -> String {
    pem.lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n")
}
