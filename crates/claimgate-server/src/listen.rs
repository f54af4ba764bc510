//! The listener: TCP, optionally TLS (rustls), HTTP/1.1 with bounded heads, a connection limit,
//! and a graceful stop that lets requests in flight finish.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::ServeError;
use crate::config::Config;

pub(crate) struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

fn tls_acceptor(tls: &crate::config::Tls) -> Result<TlsAcceptor, ServeError> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.certificate)
        .and_then(|certs| certs.collect())
        .map_err(|e| ServeError::Listen(format!("tls.certificate {}: {e}", tls.certificate.display())))?;
    if certificates.is_empty() {
        return Err(ServeError::Listen(format!(
            "tls.certificate {}: no certificate in the file",
            tls.certificate.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| ServeError::Listen(format!("tls.key {}: {e}", tls.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Listen(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|e| ServeError::Listen(format!("tls: the certificate and key do not make a server identity: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Listener {
    pub(crate) async fn bind(config: &Config) -> Result<Listener, ServeError> {
        let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServeError::Listen(format!("cannot listen on {}: {e}", config.listen)))?;
        Ok(Listener { tcp, tls })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub(crate) async fn serve(
        self,
        router: Router,
        config: &Config,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let limits = config.limits.clone();
        let graceful = GracefulShutdown::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes)
            .keep_alive(true);
        tracing::info!(address = %self.local_addr(), tls = self.tls.is_some(), "listening");
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, mostly: wait instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "connection limit reached; connection closed");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service =
                tower::ServiceExt::map_request(router.clone(), move |mut request: http::Request<Incoming>| {
                    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                    request
                });
            let service = TowerToHyperService::new(service);
            match &self.tls {
                None => {
                    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        let _ = connection.await;
                        drop(slot);
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let http = http.clone();
                    let watcher = graceful.watcher();
                    let handshake_timeout = limits.header_timeout;
                    tokio::spawn(async move {
                        let Ok(Ok(stream)) = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
                        else {
                            return;
                        };
                        let _ = watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await;
                        drop(slot);
                    });
                }
            }
        }
        drop(self.tcp);
        tracing::info!("stopping: waiting for requests in flight");
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(limits.shutdown_grace) => tracing::warn!("requests still in flight after the grace period were cut"),
        }
        Ok(())
    }
}
