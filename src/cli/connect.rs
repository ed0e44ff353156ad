//! How the client commands and `tail` reach a server: a gRPC channel to `--endpoint`, over TLS
//! when the endpoint is `https://` or `--ca` is given, with a client certificate (`--cert`,
//! `--key`) for a server that requires mutual TLS, and a bearer token (`--token`) with every
//! call for a server with callers.
//! Does not make any call.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::Args;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::api::auth::BearerToken;

/// TLS to the server.
#[derive(Debug, Clone, Args)]
pub struct TlsClientArgs {
    /// The CA certificate (PEM) that signed the server's certificate; connects over TLS.
    #[arg(long, global = true, env = "TASKLEDGER_CA")]
    ca: Option<PathBuf>,
    /// This client's certificate (PEM), for a server that requires client certificates.
    #[arg(long, global = true, env = "TASKLEDGER_CERT", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of `--cert` (PEM).
    #[arg(long, global = true, env = "TASKLEDGER_KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// A bearer token of the server's `--auth-file`, sent with every call.
    #[arg(long, global = true, env = "TASKLEDGER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl TlsClientArgs {
    /// What adds `--token` to every call.
    pub fn bearer(&self) -> anyhow::Result<BearerToken> {
        BearerToken::new(self.token.as_deref()).map_err(|e| anyhow!("--token: {e}"))
    }

    /// A connected channel to `endpoint`.
    pub async fn channel(&self, endpoint: &str) -> anyhow::Result<Channel> {
        let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
        let mut channel =
            Channel::from_shared(endpoint.to_string()).map_err(|e| anyhow!("--endpoint {endpoint}: {e}"))?;
        let https = endpoint.starts_with("https://");
        if https || self.ca.is_some() || self.cert.is_some() {
            let Some(ca) = &self.ca else {
                anyhow::bail!(
                    "--endpoint {endpoint} is TLS: name the CA that signed the server's certificate with --ca"
                );
            };
            if !https {
                anyhow::bail!("--ca connects over TLS: write the endpoint as https://…");
            }
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            channel = channel.tls_config(tls).context("--ca/--cert/--key")?;
        }
        channel
            .connect()
            .await
            .with_context(|| format!("cannot connect to {endpoint} (is `taskledger serve` running? see --endpoint)"))
    }
}
