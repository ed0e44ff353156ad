//! TLS and mutual TLS of the real `taskledger serve`, with certificates made at test time: over
//! gRPC and over AWS JSON, a client with a certificate from the client CA is served; none, one
//! from another CA, an expired one, or plaintext are refused at the handshake and nothing is
//! logged. The CLI client connects with `--ca/--cert/--key`. SIGHUP reloads the certificates for
//! new connections and keeps open ones. A front end beyond loopback without TLS and
//! authenticated callers, or `--insecure-no-auth`, is refused before anything binds.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::grpc_support::{first_log_page, spawn_serve_printing};
use crate::metrics::printed_address;

/// A CA and what it signs, as PEM.
pub(crate) struct Ca(CertifiedIssuer<'static, KeyPair>);

/// A certificate and its key, as PEM.
pub(crate) struct Pem {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    pub(crate) fn pem(&self) -> String {
        self.0.pem()
    }

    /// A leaf for `names`, for a server or a client, valid now unless `expired`.
    pub(crate) fn sign(&self, names: &[&str], client: bool, expired: bool) -> Pem {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A gRPC channel to `address` over TLS trusting `ca`, with `identity` if given.
pub(crate) async fn grpc_channel(address: &str, ca: &str, identity: Option<&Pem>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(pem) = identity {
        tls = tls.identity(Identity::from_pem(&pem.cert, &pem.key));
    }
    Channel::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

/// CreateCluster over gRPC with TLS; the error text when the call does not get through.
async fn create_over_grpc(address: &str, ca: &str, identity: Option<&Pem>, name: &str) -> Result<(), String> {
    let channel = grpc_channel(address, ca, identity).await?;
    let request = CreateClusterRequest {
        cluster_name: Some(name.into()),
        ..Default::default()
    };
    EcsClient::new(channel)
        .create_cluster(request)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// One AWS JSON call over TLS: the HTTP status, or the error when the handshake fails.
#[allow(deprecated)] // ring, as the server uses
async fn aws_over_tls(address: &str, ca: &str, identity: Option<&Pem>, body: &str) -> Result<u16, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(pem) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let server = ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(server, tcp).await.map_err(|e| e.to_string())?;
    let target = format!("{}CreateCluster", taskledger::api::aws::TARGET_PREFIX);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: {target}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // With TLS 1.3 a refused client certificate shows on the first read, not the handshake.
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_serves_clients_with_certificates_from_the_client_ca_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, client_ca, stranger_ca) = (Ca::new("server CA"), Ca::new("client CA"), Ca::new("stranger"));
    let server = server_ca.sign(&["localhost", "127.0.0.1"], false, false);
    let good = client_ca.sign(&["good-client"], true, false);
    let expired = client_ca.sign(&["expired-client"], true, true);
    let stranger = stranger_ca.sign(&["stranger-client"], true, false);
    let (cert, key) = (
        write(dir.path(), "server.pem", &server.cert),
        write(dir.path(), "server.key", &server.key),
    );
    let trusted = write(dir.path(), "clients-ca.pem", &client_ca.pem());
    let (mut child, grpc, printed) = spawn_serve_printing(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &trusted,
            "--aws-listen",
            "127.0.0.1:0",
        ],
    );
    let aws = printed_address(&printed, "taskledger AWS JSON endpoint on https://");
    let ca = server_ca.pem();

    // gRPC: only the good client gets through.
    create_over_grpc(&grpc, &ca, Some(&good), "over-grpc").await.unwrap();
    for (who, identity) in [
        ("no certificate", None),
        ("an expired certificate", Some(&expired)),
        ("another CA's certificate", Some(&stranger)),
    ] {
        let refused = create_over_grpc(&grpc, &ca, identity, "never").await;
        assert!(refused.is_err(), "a client with {who} was served");
    }
    let mut plain = EcsClient::connect(format!("http://{grpc}")).await.unwrap();
    let request = CreateClusterRequest {
        cluster_name: Some("never".into()),
        ..Default::default()
    };
    assert!(
        plain.create_cluster(request).await.is_err(),
        "a plaintext client was served"
    );

    // AWS JSON: the same.
    let body = r#"{"clusterName": "over-aws"}"#;
    assert_eq!(aws_over_tls(&aws, &ca, Some(&good), body).await, Ok(200));
    let never = r#"{"clusterName": "never"}"#;
    for (who, identity) in [
        ("no certificate", None),
        ("an expired certificate", Some(&expired)),
        ("another CA's certificate", Some(&stranger)),
    ] {
        let refused = aws_over_tls(&aws, &ca, identity, never).await;
        assert!(refused.is_err(), "a client with {who} was answered: {refused:?}");
    }

    // The CLI client with --ca, --cert and --key.
    let (good_cert, good_key) = (
        write(dir.path(), "good.pem", &good.cert),
        write(dir.path(), "good.key", &good.key),
    );
    let server_ca_file = write(dir.path(), "server-ca.pem", &ca);
    let endpoint = format!("https://{grpc}");
    let listed = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["clusters", "list", "--endpoint", &endpoint, "--ca", &server_ca_file])
        .args(["--cert", &good_cert, "--key", &good_key])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("over-grpc") && listed.contains("over-aws"), "{listed}");
    let without = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["clusters", "list", "--endpoint", &endpoint, "--ca", &server_ca_file])
        .output()
        .unwrap();
    assert!(
        !without.status.success(),
        "the CLI was served without a client certificate"
    );

    // Nothing the refused clients sent was logged: two clusters, two records.
    let channel = grpc_channel(&grpc, &ca, Some(&good)).await.unwrap();
    let records = first_log_page(channel).await;
    assert_eq!(records.len(), 2, "{records:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_front_end_beyond_loopback_without_tls_and_authentication_or_insecure_no_auth_is_refused_before_it_binds() {
    let dir = tempfile::tempdir().unwrap();
    // 0.0.0.0:1 would need root to bind: the refusal must come before any bind.
    for flags in [["--listen", "0.0.0.0:1"], ["--aws-listen", "0.0.0.0:1"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_taskledger"))
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(if flags[0] == "--listen" {
                vec![]
            } else {
                vec!["--listen", "127.0.0.1:0"]
            })
            .args(flags)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("beyond loopback")
                && stderr.contains("--tls-cert")
                && stderr.contains("--insecure-no-auth"),
            "{stderr}"
        );
        assert!(
            !dir.path().join("data").exists(),
            "the store was opened before the refusal"
        );
    }
    // TLS alone is not enough: someone must authenticate the callers.
    let output = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen",
            "0.0.0.0:1",
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nothing authenticates callers") && stderr.contains("--auth-file"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificates_for_new_connections_and_keeps_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca, client_ca) = (Ca::new("old server CA"), Ca::new("new server CA"), Ca::new("client CA"));
    let old = old_ca.sign(&["localhost", "127.0.0.1"], false, false);
    let client = client_ca.sign(&["client"], true, false);
    let (cert, key) = (
        write(dir.path(), "server.pem", &old.cert),
        write(dir.path(), "server.key", &old.key),
    );
    let trusted = write(dir.path(), "clients-ca.pem", &client_ca.pem());
    let args = ["--tls-cert", &cert, "--tls-key", &key, "--tls-client-ca", &trusted];
    let (mut child, grpc, _) = spawn_serve_printing(&dir.path().join("data"), &args);
    let open = grpc_channel(&grpc, &old_ca.pem(), Some(&client)).await.unwrap();
    let mut open = EcsClient::new(open);
    let create = |name: &str| CreateClusterRequest {
        cluster_name: Some(name.into()),
        ..Default::default()
    };
    open.create_cluster(create("before")).await.unwrap();

    // New files (a certificate from another CA), then SIGHUP.
    let new = new_ca.sign(&["localhost", "127.0.0.1"], false, false);
    write(dir.path(), "server.pem", &new.cert);
    write(dir.path(), "server.key", &new.key);
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // The reload is asynchronous: new connections until one trusting the new CA gets through
    // (a bound on a hang, not a timing assertion).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if create_over_grpc(&grpc, &new_ca.pem(), Some(&client), "after")
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::task::yield_now().await;
    }
    let old_trust = create_over_grpc(&grpc, &old_ca.pem(), Some(&client), "never").await;
    assert!(
        old_trust.is_err(),
        "the old certificate is still served to new connections"
    );
    // The connection opened before the reload still works (a new one trusting the old CA cannot).
    open.create_cluster(create("still-open")).await.unwrap();

    // Files that make no TLS setup leave the current one serving.
    write(dir.path(), "server.key", "not a key");
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    for _ in 0..20 {
        create_over_grpc(&grpc, &new_ca.pem(), Some(&client), "after")
            .await
            .unwrap();
    }
    assert!(child.try_wait().unwrap().is_none(), "a bad reload stopped the server");
    child.kill().unwrap();
    child.wait().unwrap();
}
