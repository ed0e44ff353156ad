//! TLS for both front ends, from PEM files: the server's certificate chain and key, and
//! optionally a CA whose client certificates are then required (mutual TLS). One rustls
//! configuration (ring provider, no OpenSSL) serves gRPC and AWS JSON; it can be replaced while
//! serving (`taskledger serve` does on SIGHUP): connections accepted afterwards use the new one,
//! open ones keep theirs. Handshakes run concurrently, each bounded in time, so a slow or silent
//! client holds up no other.
//! Does not authenticate callers beyond the certificate check (roles are not built yet).

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use super::Swappable;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The PEM files of a TLS setup, read.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    /// When set, clients must present a certificate this CA signed.
    pub client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsPem")
            .field("cert_bytes", &self.cert.len())
            .field("client_ca", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsPem {
    /// Reads the files (what they hold is checked when a `TlsConfig` is made of them).
    pub fn read(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<TlsPem, String> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
        };
        Ok(TlsPem {
            cert: read(cert, "certificate")?,
            key: read(key, "private key")?,
            client_ca: client_ca.map(|path| read(path, "client CA")).transpose()?,
        })
    }

    /// The server configuration (gRPC over HTTP/2, AWS JSON over HTTP/1.1 or HTTP/2).
    pub fn rustls(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let certs = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the certificate file is not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err("the certificate file holds no certificate".to_string());
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| format!("the private key file: {e}"))?;
        // ring, the provider tonic's TLS uses here too (rustls deprecates it for lacking
        // post-quantum key exchange; aws-lc-rs would need a C toolchain with cmake on the build).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|e| format!("the client CA file is not PEM certificates: {e}"))?;
                    roots.add(cert).map_err(|e| format!("the client CA file: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("the client CA file holds no certificate".to_string());
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("the client CA: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("the certificate and key do not make a server identity: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A TLS server configuration that can be replaced while serving. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig(Swappable<rustls::ServerConfig>);

impl TlsConfig {
    pub fn new(pem: &TlsPem) -> Result<TlsConfig, String> {
        Ok(TlsConfig(Swappable::new(pem.rustls()?)))
    }

    /// Connections accepted from now on use `pem`'s certificates.
    pub fn replace(&self, pem: &TlsPem) -> Result<(), String> {
        self.0.replace(pem.rustls()?);
        Ok(())
    }

    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.0.current()
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

/// Longest a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting to be served.
const ACCEPTED_BACKLOG: usize = 64;

/// The TLS connections a listener accepts, handshakes done: a stream of them for tonic, and an
/// axum `Listener`. Accepting stops when it is dropped.
pub struct TlsIncoming {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// Accepts on `listener` and makes each connection a TLS one with the configuration current at
/// its arrival. Refused handshakes (no client certificate, an untrusted or expired one) are
/// logged at debug level and dropped.
pub fn accept(listener: TcpListener, tls: TlsConfig) -> std::io::Result<TlsIncoming> {
    let local = listener.local_addr()?;
    let (sender, accepted) = mpsc::channel(ACCEPTED_BACKLOG);
    let mut listener = listener;
    let acceptor = tokio::spawn(async move {
        loop {
            // axum's accept logs and waits out errors such as running out of file descriptors.
            let (tcp, peer) = axum::serve::Listener::accept(&mut listener).await;
            let _ = tcp.set_nodelay(true);
            let handshake = tokio_rustls::TlsAcceptor::from(tls.current());
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send((stream, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    Ok(TlsIncoming {
        accepted,
        local,
        acceptor,
    })
}

impl tonic::codegen::tokio_stream::Stream for TlsIncoming {
    type Item = std::io::Result<TlsStream<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.accepted
            .poll_recv(cx)
            .map(|next| next.map(|(stream, _)| Ok(stream)))
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The acceptor only stops when this is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
