//! Callers and what they may do (`taskledger serve --auth-file`): the credentials file (TOML or
//! JSON) naming each caller with a bearer token (kept as its SHA-256), a client-certificate
//! subject and/or an AWS access key, its roles (`reader`, `agent`, `operator`, `admin`), an
//! optional region and cluster scope and an optional rate limit; who a request comes from, and
//! whether that caller may run an operation on what it names. Both front ends and the Ledger
//! service ask here before anything runs, so a refused call writes nothing.
//! Does not verify SigV4 signatures itself (see `sigv4`) or terminate TLS (see `tls`).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;
use tonic::Code;

use super::Swappable;
use crate::domain::ids::{printable, validate_name};
use crate::domain::Scope;

/// A role: what kind of operations a caller may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Describe*/List*, TaskHistory, DescribeTasksAsOf, ReadLog, Subscribe.
    Reader,
    /// What a container agent sends: Submit*StateChange(s), RegisterContainerInstance.
    Agent,
    /// Every operation of the Ecs service, and what a reader may do.
    Operator,
    /// Everything, Verify included.
    Admin,
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Agent,
    Operate,
    Administer,
}

impl Need {
    fn of(operation: &str) -> Need {
        match operation {
            "SubmitTaskStateChange"
            | "SubmitContainerStateChange"
            | "SubmitAttachmentStateChanges"
            | "RegisterContainerInstance" => Need::Agent,
            "TaskHistory" | "DescribeTasksAsOf" | "ReadLog" | "Subscribe" => Need::Read,
            "Verify" => Need::Administer,
            read if read.starts_with("Describe") || read.starts_with("List") => Need::Read,
            _ => Need::Operate,
        }
    }

    fn met_by(self, role: Role) -> bool {
        match role {
            Role::Admin => true,
            Role::Operator => self != Need::Administer,
            Role::Agent => self == Need::Agent,
            Role::Reader => self == Need::Read,
        }
    }
}

/// One caller of the credentials file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallerEntry {
    name: String,
    roles: Vec<Role>,
    /// SHA-256 of the bearer token, 64 hex digits (`taskledger auth token` makes a pair).
    token_sha256: Option<String>,
    /// The subject of the caller's client certificate, e.g. `CN=ci-runner, O=Acme`, or just
    /// `CN=ci-runner`.
    cert_subject: Option<String>,
    aws_access_key_id: Option<String>,
    aws_secret_access_key: Option<String>,
    /// Regions the caller may act in; every region when empty.
    #[serde(default)]
    regions: Vec<String>,
    /// Clusters the caller may act on (names); every cluster when empty.
    #[serde(default)]
    clusters: Vec<String>,
    /// Sustained requests per second; unlimited when absent.
    requests_per_second: Option<u32>,
    /// Requests allowed at once above the sustained rate (default: one second's worth).
    burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(rename = "caller")]
    callers: Vec<CallerEntry>,
}

/// A caller the server knows.
pub struct Caller {
    pub name: String,
    roles: Vec<Role>,
    regions: HashSet<String>,
    clusters: HashSet<String>,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// Every caller of one credentials file, indexed by each way of proving who one is.
pub struct Callers {
    by_token: HashMap<[u8; 32], Arc<Caller>>,
    by_subject: HashMap<String, Arc<Caller>>,
    by_access_key: HashMap<String, (String, Arc<Caller>)>,
}

impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a secret.
        f.debug_struct("Callers")
            .field("tokens", &self.by_token.len())
            .field("subjects", &self.by_subject.len())
            .field("access_keys", &self.by_access_key.len())
            .finish()
    }
}

impl Callers {
    /// Reads a credentials file: TOML when its name ends in `.toml`, else JSON.
    pub fn read(path: &Path) -> Result<Callers, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the auth file can be read by other users of this machine; it may hold AWS secret keys (chmod 600 it)"
                );
            }
        }
        let toml = path.extension().is_some_and(|e| e == "toml");
        Callers::parse(&text, toml).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks a credentials file's text.
    pub fn parse(text: &str, toml: bool) -> Result<Callers, String> {
        let file: CredentialsFile = if toml {
            ::toml::from_str(text).map_err(|e| e.to_string())?
        } else {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        };
        let mut callers = Callers {
            by_token: HashMap::new(),
            by_subject: HashMap::new(),
            by_access_key: HashMap::new(),
        };
        let mut names = HashSet::new();
        for entry in file.callers {
            let name = entry.name.clone();
            let at = |message: String| format!("caller '{}': {message}", printable(&name));
            if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(at("a name is 1–128 printable characters without spaces".to_string()));
            }
            if !names.insert(name.clone()) {
                return Err(at("named twice".to_string()));
            }
            if entry.roles.is_empty() {
                return Err(at("has no roles (reader, agent, operator, admin)".to_string()));
            }
            for region in &entry.regions {
                Scope::new(region, "123456789012").map_err(|e| at(format!("regions: {}", e.message)))?;
            }
            for cluster in &entry.clusters {
                validate_name("clusters", "Cluster name", cluster)
                    .map_err(|e| at(format!("clusters: {}", e.message)))?;
            }
            let limiter = match entry.requests_per_second {
                None if entry.burst.is_some() => return Err(at("burst without requests_per_second".to_string())),
                None => None,
                Some(rate) => {
                    let rate = NonZeroU32::new(rate)
                        .ok_or_else(|| at("requests_per_second must be at least 1".to_string()))?;
                    let burst = NonZeroU32::new(entry.burst.unwrap_or(rate.get()))
                        .ok_or_else(|| at("burst must be at least 1".to_string()))?;
                    Some(DefaultDirectRateLimiter::direct(
                        Quota::per_second(rate).allow_burst(burst),
                    ))
                }
            };
            let token = entry
                .token_sha256
                .as_deref()
                .map(|hex| token_hash_from_hex(hex).ok_or_else(|| at("token_sha256 must be 64 hex digits".to_string())))
                .transpose()?;
            let key = match (entry.aws_access_key_id, entry.aws_secret_access_key) {
                (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Some((id, secret)),
                (None, None) => None,
                _ => {
                    return Err(at(
                        "aws_access_key_id and aws_secret_access_key go together (SigV4 needs the secret)".to_string(),
                    ))
                }
            };
            if token.is_none() && entry.cert_subject.is_none() && key.is_none() {
                return Err(at(
                    "no way to prove it: give token_sha256, cert_subject or aws_access_key_id".to_string(),
                ));
            }
            let caller = Arc::new(Caller {
                name: name.clone(),
                roles: entry.roles,
                regions: entry.regions.into_iter().collect(),
                clusters: entry.clusters.into_iter().collect(),
                limiter,
            });
            if let Some(token) = token {
                if callers.by_token.insert(token, Arc::clone(&caller)).is_some() {
                    return Err(at("its token is another caller's too".to_string()));
                }
            }
            if let Some(subject) = entry.cert_subject {
                if callers
                    .by_subject
                    .insert(subject.clone(), Arc::clone(&caller))
                    .is_some()
                {
                    return Err(at(format!("certificate subject '{subject}' is another caller's too")));
                }
            }
            if let Some((id, secret)) = key {
                if callers
                    .by_access_key
                    .insert(id.clone(), (secret, Arc::clone(&caller)))
                    .is_some()
                {
                    return Err(at(format!("access key {id} is another caller's too")));
                }
            }
        }
        if names.is_empty() {
            return Err("names no caller: add [[caller]] entries".to_string());
        }
        Ok(callers)
    }

    /// The caller whose token this is.
    fn by_token(&self, token: &str) -> Option<&Arc<Caller>> {
        self.by_token.get(&token_hash(token))
    }

    /// The caller of a client certificate, by its whole subject or its `CN=…` alone.
    fn by_certificate(&self, der: &[u8]) -> Result<(&Arc<Caller>, String), String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("the client certificate cannot be read: {e}"))?;
        let subject = cert.subject().to_string();
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(|cn| format!("CN={cn}"));
        let caller = self
            .by_subject
            .get(&subject)
            .or_else(|| common_name.as_ref().and_then(|cn| self.by_subject.get(cn)));
        match caller {
            Some(caller) => Ok((caller, subject)),
            None => Err(format!(
                "no caller of the auth file has the client certificate subject '{}'",
                printable(&subject)
            )),
        }
    }

    /// The secret and caller of an AWS access key id.
    pub fn by_access_key(&self, id: &str) -> Option<(&str, &Arc<Caller>)> {
        self.by_access_key
            .get(id)
            .map(|(secret, caller)| (secret.as_str(), caller))
    }
}

/// The SHA-256 of a bearer token, as the credentials file keeps it.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn token_hash_from_hex(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut hash).ok()?;
    Some(hash)
}

/// The client side of a bearer token: a tonic interceptor that sends `authorization: Bearer
/// <token>` with every call (nothing when it holds no token).
#[derive(Clone, Default)]
pub struct BearerToken(Option<tonic::metadata::AsciiMetadataValue>);

impl BearerToken {
    /// A token to send, or `None` for none.
    pub fn new(token: Option<&str>) -> Result<BearerToken, String> {
        token
            .map(|token| {
                format!("Bearer {}", token.trim())
                    .parse()
                    .map_err(|_| "a token is printable ASCII".to_string())
            })
            .transpose()
            .map(BearerToken)
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.write_str(if self.0.is_some() {
            "BearerToken(..)"
        } else {
            "BearerToken(none)"
        })
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A new bearer token: 32 random bytes, hex.
pub fn new_token() -> String {
    let bytes = [uuid::Uuid::new_v4().into_bytes(), uuid::Uuid::new_v4().into_bytes()].concat();
    format!("tl_{}", hex::encode(bytes))
}

/// How a server authenticates: not at all (the loopback default, or `--insecure-no-auth`), or
/// against a credentials file that SIGHUP may replace. Cheap to clone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Auth(Option<Swappable<Callers>>);

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Auth(open)"),
            Some(_) => f.write_str("Auth(callers)"),
        }
    }
}

impl Auth {
    /// Every caller may do everything.
    pub fn open() -> Auth {
        Auth(None)
    }

    /// Only `callers` may call, each as its roles allow.
    pub fn with(callers: Callers) -> Auth {
        Auth(Some(Swappable::new(Arc::new(callers))))
    }

    /// Calls from now on are checked against `callers` (rate limits start afresh).
    pub fn replace(&self, callers: Callers) -> Result<(), String> {
        let Some(current) = &self.0 else {
            return Err("the server was started without --auth-file".to_string());
        };
        current.replace(Arc::new(callers));
        Ok(())
    }

    /// The callers in force, or `None` when the server authenticates no one.
    pub fn callers(&self) -> Option<Arc<Callers>> {
        self.0.as_ref().map(Swappable::current)
    }

    /// Who a gRPC call comes from: a `authorization: Bearer <token>` entry, else the client
    /// certificate (mutual TLS).
    pub fn identify_grpc(
        &self,
        metadata: &MetadataMap,
        peer_certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Result<Access, Refusal> {
        let Some(callers) = self.callers() else {
            return Ok(Access::Open);
        };
        let header = metadata.get("authorization").map(|value| value.to_str().unwrap_or(""));
        callers
            .identify(header, peer_certs.and_then(<[_]>::first).map(|leaf| leaf.as_ref()))
            .unwrap_or_else(|| {
                Err(Refusal::unauthenticated(
                    "this server authenticates its callers: send 'authorization: Bearer <token>' metadata or a client certificate",
                ))
            })
    }
}

impl Callers {
    /// The caller of an `Authorization: Bearer <token>` header, else of the client certificate;
    /// `None` when the request offers neither. (SigV4 is the AWS endpoint's, checked before.)
    pub fn identify(&self, authorization: Option<&str>, leaf: Option<&[u8]>) -> Option<Result<Access, Refusal>> {
        match (authorization, leaf) {
            (Some(header), _) => Some(match bearer_token(header) {
                Some(token) => token_access(self, token),
                None => Err(Refusal::unauthenticated(
                    "the authorization header must be 'Bearer <token>'",
                )),
            }),
            (None, Some(leaf)) => Some(certificate_access(self, leaf)),
            (None, None) => None,
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

/// The caller of a bearer token.
pub(crate) fn token_access(callers: &Callers, token: &str) -> Result<Access, Refusal> {
    let caller = callers
        .by_token(token)
        .ok_or_else(|| Refusal::unauthenticated("the bearer token is not one of this server's callers"))?;
    Ok(Access::caller(
        caller,
        format!("token sha256:{}", hex::encode(&token_hash(token)[..6])),
    ))
}

/// The caller of a client certificate.
pub(crate) fn certificate_access(callers: &Callers, leaf: &[u8]) -> Result<Access, Refusal> {
    let (caller, subject) = callers.by_certificate(leaf).map_err(Refusal::unauthenticated)?;
    Ok(Access::caller(caller, format!("cert {subject}")))
}

/// Who a call comes from, once authenticated.
#[derive(Debug, Clone)]
pub enum Access {
    /// The server authenticates no one: everything is allowed, and the log names no caller.
    Open,
    /// A caller of the credentials file, and how it proved it.
    Caller { caller: Arc<Caller>, principal: String },
}

impl Access {
    pub(super) fn caller(caller: &Arc<Caller>, principal: String) -> Access {
        Access::Caller {
            caller: Arc::clone(caller),
            principal,
        }
    }

    /// The caller's name and principal, for the log's cause (empty when open).
    pub fn identity(&self) -> (String, String) {
        match self {
            Access::Open => (String::new(), String::new()),
            Access::Caller { caller, principal } => (caller.name.clone(), principal.clone()),
        }
    }

    /// Whether this caller may run `operation` in `scope` on what `reach` names; also takes one
    /// request from the caller's rate limit.
    pub fn authorize(&self, operation: &str, scope: &Scope, reach: Reach<'_>) -> Result<(), Refusal> {
        let Access::Caller { caller, .. } = self else {
            return Ok(());
        };
        if let Some(limiter) = &caller.limiter {
            if limiter.check().is_err() {
                return Err(Refusal {
                    code: Code::ResourceExhausted,
                    exception: "ThrottlingException",
                    message: "Rate exceeded".to_string(),
                });
            }
        }
        let action = action_of(operation);
        let denied = |resource: String, why: &str| {
            Refusal {
            code: Code::PermissionDenied,
            exception: "AccessDeniedException",
            message: format!(
                "User: arn:aws:iam::{}:user/{} is not authorized to perform: {action} on resource: {resource} because {why}",
                scope.account(),
                caller.name
            ),
        }
        };
        let region_wide = format!("arn:aws:ecs:{}:{}:*", scope.region(), scope.account());
        let need = Need::of(operation);
        if !caller.roles.iter().any(|role| need.met_by(*role)) {
            return Err(denied(
                region_wide,
                &format!("no role of this caller allows the {action} action"),
            ));
        }
        if !caller.regions.is_empty() && !caller.regions.contains(scope.region()) {
            return Err(denied(region_wide, "this caller is limited to other regions"));
        }
        if caller.clusters.is_empty() {
            return Ok(());
        }
        let check = |cluster: &str| {
            if caller.clusters.contains(cluster) {
                Ok(())
            } else {
                Err(denied(
                    scope.cluster_arn(cluster),
                    "this caller is limited to other clusters",
                ))
            }
        };
        match reach {
            Reach::Region => Ok(()),
            Reach::Cluster(named) => check(cluster_name(named)),
            Reach::Clusters([]) => check("default"),
            Reach::Clusters(named) => named.iter().try_for_each(|c| check(cluster_name(Some(c)))),
            Reach::Resource(arn) => match cluster_of_arn(arn) {
                Some(cluster) => check(cluster),
                None => Ok(()),
            },
            Reach::Named(Some(cluster)) => check(cluster_name(Some(cluster))),
            Reach::Named(None) => Err(denied(
                region_wide,
                "this caller is limited to some clusters and the request names none: name one of them",
            )),
        }
    }
}

/// The IAM-style action of an operation: `ecs:RunTask`, `taskledger:ReadLog`.
fn action_of(operation: &str) -> String {
    match operation {
        "TaskHistory" | "DescribeTasksAsOf" | "ReadLog" | "Subscribe" | "Verify" => format!("taskledger:{operation}"),
        _ => format!("ecs:{operation}"),
    }
}

/// What a request acts on, as far as a cluster scope is concerned.
#[derive(Debug, Clone, Copy)]
pub enum Reach<'a> {
    /// Region-wide resources (task definitions, the list of clusters): any cluster scope allows it.
    Region,
    /// One cluster, by name or ARN (`default` when not named).
    Cluster(Option<&'a str>),
    /// Several clusters (`default` when none is named).
    Clusters(&'a [String]),
    /// A resource by ARN: its cluster if it lives in one.
    Resource(&'a str),
    /// Whatever cluster this names; without one the request may reach any cluster (the whole
    /// log, a task by bare id), which a cluster-scoped caller may not.
    Named(Option<&'a str>),
}

/// The name of a cluster given by name or ARN; `default` when not given.
fn cluster_name(named: Option<&str>) -> &str {
    match named {
        None | Some("") => "default",
        Some(named) => match named.strip_prefix("arn:") {
            Some(_) => named.rsplit_once(":cluster/").map_or(named, |(_, name)| name),
            None => named,
        },
    }
}

/// The cluster an ECS resource ARN lives in: `cluster/NAME`, `task/NAME/ID`,
/// `container-instance/NAME/ID`; none for task definitions and short ARNs.
pub fn cluster_of_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let (kind, rest) = resource.split_once('/')?;
    match kind {
        "cluster" => Some(rest),
        "task" | "container-instance" => rest.split_once('/').map(|(cluster, _)| cluster),
        _ => None,
    }
}

/// A call refused before it ran: not authenticated, not permitted, or over its rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The gRPC code: UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED.
    pub code: Code,
    /// The AWS exception name (also gRPC's `ErrorInfo.reason`).
    pub exception: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn unauthenticated(message: impl Into<String>) -> Refusal {
        Refusal {
            code: Code::Unauthenticated,
            exception: "UnrecognizedClientException",
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cret-token";

    fn file() -> String {
        let hash = hex::encode(token_hash(TOKEN));
        format!(
            r#"
            [[caller]]
            name = "ci"
            roles = ["operator"]
            token_sha256 = "{hash}"
            clusters = ["prod"]

            [[caller]]
            name = "agent-1"
            roles = ["agent"]
            aws_access_key_id = "AKIAAGENT"
            aws_secret_access_key = "agent-secret"
            regions = ["eu-west-1"]
            requests_per_second = 1
            burst = 2
            "#
        )
    }

    fn scope(region: &str) -> Scope {
        Scope::new(region, "123456789012").unwrap()
    }

    #[test]
    fn roles_allow_what_they_name() {
        assert!(Need::of("DescribeTasks").met_by(Role::Reader));
        assert!(Need::of("ReadLog").met_by(Role::Reader));
        assert!(!Need::of("RunTask").met_by(Role::Reader));
        assert!(Need::of("SubmitTaskStateChange").met_by(Role::Agent));
        assert!(!Need::of("DeleteCluster").met_by(Role::Agent));
        assert!(!Need::of("DescribeTasks").met_by(Role::Agent));
        assert!(Need::of("DeleteCluster").met_by(Role::Operator));
        assert!(Need::of("TaskHistory").met_by(Role::Operator));
        assert!(!Need::of("Verify").met_by(Role::Operator));
        assert!(Need::of("Verify").met_by(Role::Admin));
    }

    #[test]
    fn a_token_finds_its_caller_and_the_scope_limits_it() {
        let callers = Callers::parse(&file(), true).unwrap();
        assert!(token_access(&callers, "wrong").is_err());
        let access = token_access(&callers, TOKEN).unwrap();
        assert_eq!(access.identity().0, "ci");
        assert!(access.identity().1.starts_with("token sha256:"));
        let us = scope("us-east-1");
        access.authorize("RunTask", &us, Reach::Cluster(Some("prod"))).unwrap();
        let arn = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
        access.authorize("RunTask", &us, Reach::Cluster(Some(arn))).unwrap();
        let denied = access.authorize("RunTask", &us, Reach::Cluster(None)).unwrap_err();
        assert_eq!(denied.exception, "AccessDeniedException");
        assert!(denied.message.contains("ecs:RunTask"), "{}", denied.message);
        assert!(denied.message.contains("cluster/default"), "{}", denied.message);
        access.authorize("RegisterTaskDefinition", &us, Reach::Region).unwrap();
        let task = "arn:aws:ecs:us-east-1:123456789012:task/staging/0123456789abcdef0123456789abcdef";
        assert!(access.authorize("TagResource", &us, Reach::Resource(task)).is_err());
        assert!(access.authorize("ReadLog", &us, Reach::Named(None)).is_err());
        access.authorize("ReadLog", &us, Reach::Named(Some("prod"))).unwrap();
        assert!(access.authorize("Verify", &us, Reach::Region).is_err());
    }

    #[test]
    fn regions_roles_and_rates_limit_an_access_key() {
        let callers = Callers::parse(&file(), true).unwrap();
        let (secret, caller) = callers.by_access_key("AKIAAGENT").unwrap();
        assert_eq!(secret, "agent-secret");
        let access = Access::caller(caller, "sigv4 AKIAAGENT".to_string());
        let eu = scope("eu-west-1");
        let denied = access
            .authorize("DeleteCluster", &eu, Reach::Cluster(None))
            .unwrap_err();
        assert_eq!(denied.code, Code::PermissionDenied);
        let elsewhere = access
            .authorize("SubmitTaskStateChange", &scope("us-east-1"), Reach::Cluster(None))
            .unwrap_err();
        assert!(elsewhere.message.contains("other regions"), "{}", elsewhere.message);
        // Three calls so far took the burst of two: the next is over the rate.
        let throttled = access
            .authorize("SubmitTaskStateChange", &eu, Reach::Cluster(None))
            .unwrap_err();
        assert_eq!(
            (throttled.code, throttled.exception),
            (Code::ResourceExhausted, "ThrottlingException")
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, expected) in [
            (
                "[[caller]]\nname = \"a\"\nroles = []\ntoken_sha256 = \"00\"",
                "no roles",
            ),
            ("[[caller]]\nname = \"a\"\nroles = [\"reader\"]", "no way to prove it"),
            (
                "[[caller]]\nname = \"a\"\nroles = [\"reader\"]\ntoken_sha256 = \"xyz\"",
                "64 hex",
            ),
            (
                "[[caller]]\nname = \"a\"\nroles = [\"root\"]\ncert_subject = \"CN=a\"",
                "unknown variant",
            ),
            (
                "[[caller]]\nname = \"a\"\nroles = [\"reader\"]\naws_access_key_id = \"AKIA\"",
                "go together",
            ),
            (
                "[[caller]]\nname = \"a\"\nroles = [\"reader\"]\ncert_subject = \"CN=a\"\n\
                 [[caller]]\nname = \"b\"\nroles = [\"reader\"]\ncert_subject = \"CN=a\"",
                "another caller's",
            ),
            (
                "[[caller]]\nname = \"a\"\nroles = [\"reader\"]\ncert_subject = \"CN=a\"\npassword = \"x\"",
                "unknown field",
            ),
            (
                "[[caller]]\nname = \"a\"\nroles = [\"reader\"]\ncert_subject = \"CN=a\"\nregions = [\"mars\"]",
                "regions",
            ),
        ] {
            let error = Callers::parse(text, true).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let json = r#"{"caller": [{"name": "a", "roles": ["admin"], "cert_subject": "CN=a"}]}"#;
        assert!(Callers::parse(json, false).is_ok());
    }

    #[test]
    fn arns_name_their_cluster() {
        assert_eq!(
            cluster_of_arn("arn:aws:ecs:us-east-1:123456789012:cluster/prod"),
            Some("prod")
        );
        assert_eq!(
            cluster_of_arn("arn:aws:ecs:us-east-1:123456789012:container-instance/prod/abc"),
            Some("prod")
        );
        assert_eq!(
            cluster_of_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"),
            None
        );
        assert_eq!(cluster_name(Some("arn:aws:ecs:us-east-1:123456789012:cluster/x")), "x");
        assert_eq!(cluster_name(None), "default");
    }
}
