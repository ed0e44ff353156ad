//! TLS for both front ends, from PEM files: the server's certificate chain and key, and
//! optionally a CA whose client certificates are then required (mutual TLS). gRPC takes it as
//! tonic's `ServerTlsConfig`, the AWS JSON endpoint as a rustls `ServerConfig`; both use rustls
//! with the ring provider (no OpenSSL). Certificates are read once, at start.
//! Does not authenticate callers beyond the certificate check (roles are not built yet).

use std::path::Path;
use std::sync::Arc;

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
    /// Reads the files and checks that they hold what they should, naming the one that does not.
    pub fn read(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<TlsPem, String> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
        };
        let pem = TlsPem {
            cert: read(cert, "certificate")?,
            key: read(key, "private key")?,
            client_ca: client_ca.map(|path| read(path, "client CA")).transpose()?,
        };
        pem.rustls()?;
        Ok(pem)
    }

    /// For the gRPC server.
    pub fn tonic(&self) -> tonic::transport::ServerTlsConfig {
        let identity = tonic::transport::Identity::from_pem(&self.cert, &self.key);
        let config = tonic::transport::ServerTlsConfig::new().identity(identity);
        match &self.client_ca {
            Some(ca) => config.client_ca_root(tonic::transport::Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// For the AWS JSON endpoint (HTTP/1.1 and HTTP/2 over TLS).
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
