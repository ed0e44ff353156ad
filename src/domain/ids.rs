//! Identifiers and ARNs: the account/region scope, names, task and container-instance ids, the
//! ECS long-format ARNs, and parsing of whatever ECS accepts in their place (bare id, short name,
//! short or long ARN). Also the deterministic id derivation commands use, so replays and tests
//! see the same ids. Does not look anything up: resolution against state is the caller's job.

use super::error::{DomainError, DomainResult, EcsException};

/// The account and region every resource lives in. Resources of different scopes never mix:
/// every lookup is keyed by scope and every ARN carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    region: String,
    account: String,
}

impl Scope {
    /// A validated scope: `region` like `us-east-1`, `account` of 12 digits.
    pub fn new(region: &str, account: &str) -> DomainResult<Scope> {
        validate_region(region)?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::invalid_parameter(
                "account",
                format!("Account id '{}' is invalid: it must be 12 digits.", printable(account)),
            ));
        }
        Ok(Scope {
            region: region.to_string(),
            account: account.to_string(),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// The AWS partition of the region: `aws`, `aws-cn` or `aws-us-gov`.
    pub fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    fn arn(&self, resource: &str) -> String {
        format!(
            "arn:{}:ecs:{}:{}:{}",
            self.partition(),
            self.region,
            self.account,
            resource
        )
    }

    pub fn cluster_arn(&self, cluster: &str) -> String {
        self.arn(&format!("cluster/{cluster}"))
    }

    pub fn task_arn(&self, cluster: &str, task_id: &str) -> String {
        self.arn(&format!("task/{cluster}/{task_id}"))
    }

    pub fn container_instance_arn(&self, cluster: &str, instance_id: &str) -> String {
        self.arn(&format!("container-instance/{cluster}/{instance_id}"))
    }

    pub fn container_arn(&self, cluster: &str, task_id: &str, container_uuid: &str) -> String {
        self.arn(&format!("container/{cluster}/{task_id}/{container_uuid}"))
    }

    pub fn task_definition_arn(&self, family: &str, revision: u32) -> String {
        self.arn(&format!("task-definition/{family}:{revision}"))
    }
}

/// Checks a region name such as `us-east-1` or `us-gov-west-1`.
pub fn validate_region(region: &str) -> DomainResult<()> {
    let ok = (4..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.as_bytes()[0].is_ascii_lowercase()
        && region.as_bytes()[region.len() - 1].is_ascii_digit()
        && region.contains('-')
        && !region.contains("--");
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid_parameter(
            "region",
            format!(
                "Region '{}' is invalid: expected a name like 'us-east-1'.",
                printable(region)
            ),
        ))
    }
}

/// Shows untrusted input in a message: control characters escaped, at most 80 characters.
pub fn printable(input: &str) -> String {
    let mut out: String = input.chars().take(80).flat_map(char::escape_debug).collect();
    if input.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Checks free text from a request: at most `max` characters and no control characters.
pub fn check_printable(field: &str, text: &str, max: usize) -> DomainResult<()> {
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(DomainError::invalid_parameter(
            field,
            format!("{field} must be at most {max} characters without control characters."),
        ));
    }
    Ok(())
}

/// Checks a cluster name, family, container or volume name: 1–255 of `[A-Za-z0-9_-]`.
pub fn validate_name(field: &str, what: &str, name: &str) -> DomainResult<()> {
    if name.is_empty() || name.len() > super::limits::NAME_MAX {
        return Err(DomainError::invalid_parameter(
            field,
            format!(
                "{what} must be 1 to 255 characters long; got {} characters.",
                name.len()
            ),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(DomainError::invalid_parameter(
            field,
            format!(
                "{what} '{}' contains {:?}: only letters, digits, hyphens and underscores are allowed.",
                printable(name),
                bad
            ),
        ));
    }
    Ok(())
}

/// Whether `id` is a task or container-instance id: 32 lowercase hex characters (current format)
/// or a 36-character hyphenated UUID (the old format, accepted for lookups).
pub fn is_resource_id(id: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if id.len() == 32 {
        return hex(id);
    }
    if id.len() == 36 {
        let parts: Vec<&str> = id.split('-').collect();
        return parts.len() == 5
            && [8, 4, 4, 4, 12]
                .iter()
                .zip(&parts)
                .all(|(n, p)| p.len() == *n && hex(p));
    }
    false
}

/// The parts of an ECS ARN: `arn:<partition>:ecs:<region>:<account>:<resource>`.
struct ArnParts<'a> {
    resource: &'a str,
}

fn split_arn<'a>(scope: &Scope, field: &str, arn: &'a str) -> DomainResult<ArnParts<'a>> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "ecs" {
        return Err(DomainError::invalid_parameter(
            field,
            format!(
                "'{}' is not a valid ECS ARN: expected arn:<partition>:ecs:<region>:<account>:<resource>.",
                printable(arn)
            ),
        ));
    }
    if parts[1] != scope.partition() || parts[3] != scope.region || parts[4] != scope.account {
        return Err(DomainError::invalid_parameter(
            field,
            format!(
                "ARN '{}' belongs to partition '{}', region '{}', account '{}', but this request is \
                 served for partition '{}', region '{}', account '{}'; resources of different \
                 accounts or regions never mix.",
                printable(arn),
                printable(parts[1]),
                printable(parts[3]),
                printable(parts[4]),
                scope.partition(),
                scope.region,
                scope.account
            ),
        ));
    }
    Ok(ArnParts { resource: parts[5] })
}

/// Resolves a `cluster` parameter (short name or cluster ARN; `None` means `default`) to its name.
pub fn parse_cluster(scope: &Scope, field: &str, input: Option<&str>) -> DomainResult<String> {
    let input = match input {
        None => return Ok("default".to_string()),
        Some(s) => s,
    };
    if input.starts_with("arn:") {
        let parts = split_arn(scope, field, input)?;
        let name = parts.resource.strip_prefix("cluster/").ok_or_else(|| {
            DomainError::invalid_parameter(
                field,
                format!(
                    "'{}' is not a cluster ARN (expected …:cluster/<name>).",
                    printable(input)
                ),
            )
        })?;
        validate_name(field, "Cluster name", name)?;
        return Ok(name.to_string());
    }
    validate_name(field, "Cluster name", input)?;
    Ok(input.to_string())
}

/// A task or container instance named by id or ARN. `cluster` is the cluster named in a long ARN;
/// the caller checks it against the cluster of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub id: String,
    pub cluster: Option<String>,
}

/// Parses a task identifier: a bare id, `…:task/<id>` or `…:task/<cluster>/<id>`.
pub fn parse_task_ref(scope: &Scope, field: &str, input: &str) -> DomainResult<ResourceRef> {
    parse_resource_ref(scope, field, input, "task", "Task")
}

/// Parses a container-instance identifier: a bare id or a short/long container-instance ARN.
pub fn parse_container_instance_ref(scope: &Scope, field: &str, input: &str) -> DomainResult<ResourceRef> {
    parse_resource_ref(scope, field, input, "container-instance", "Container instance")
}

fn parse_resource_ref(scope: &Scope, field: &str, input: &str, kind: &str, what: &str) -> DomainResult<ResourceRef> {
    let invalid = || {
        DomainError::invalid_parameter(field, format!("{what} Identifier is invalid")).hint(format!(
            "'{}' is neither an id (32 lowercase hex characters) nor a {kind} ARN.",
            printable(input)
        ))
    };
    if !input.starts_with("arn:") {
        return if is_resource_id(input) {
            Ok(ResourceRef {
                id: input.to_string(),
                cluster: None,
            })
        } else {
            Err(invalid())
        };
    }
    let parts = split_arn(scope, field, input)?;
    let rest = parts
        .resource
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(invalid)?;
    let (cluster, id) = match rest.split_once('/') {
        Some((cluster, id)) => {
            validate_name(field, "Cluster name", cluster)?;
            (Some(cluster.to_string()), id)
        }
        None => (None, rest),
    };
    if !is_resource_id(id) {
        return Err(invalid());
    }
    Ok(ResourceRef {
        id: id.to_string(),
        cluster,
    })
}

/// A `taskDefinition` parameter: a family (latest ACTIVE revision) or one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDefinitionRef {
    Family(String),
    Revision(String, u32),
}

impl TaskDefinitionRef {
    pub fn family(&self) -> &str {
        match self {
            TaskDefinitionRef::Family(f) | TaskDefinitionRef::Revision(f, _) => f,
        }
    }
}

/// Parses `family`, `family:revision` or a task-definition ARN.
pub fn parse_task_definition_ref(scope: &Scope, field: &str, input: &str) -> DomainResult<TaskDefinitionRef> {
    let body = if input.starts_with("arn:") {
        let parts = split_arn(scope, field, input)?;
        let body = parts.resource.strip_prefix("task-definition/").ok_or_else(|| {
            DomainError::client_at(
                field,
                format!(
                    "'{}' is not a task-definition ARN (expected …:task-definition/<family>:<revision>).",
                    printable(input)
                ),
            )
        })?;
        if !body.contains(':') {
            return Err(DomainError::client_at(
                field,
                format!("Task-definition ARN '{}' must end with :<revision>.", printable(input)),
            ));
        }
        body
    } else {
        input
    };
    match body.split_once(':') {
        None => {
            validate_family(field, body)?;
            Ok(TaskDefinitionRef::Family(body.to_string()))
        }
        Some((family, revision)) => {
            validate_family(field, family)?;
            let revision = parse_revision(field, revision)?;
            Ok(TaskDefinitionRef::Revision(family.to_string(), revision))
        }
    }
}

fn validate_family(field: &str, family: &str) -> DomainResult<()> {
    validate_name(field, "Family", family).map_err(|e| DomainError {
        exception: EcsException::ClientException,
        ..e
    })
}

fn parse_revision(field: &str, revision: &str) -> DomainResult<u32> {
    match revision.parse::<u32>() {
        Ok(r) if r >= 1 && !revision.starts_with('+') => Ok(r),
        _ => Err(DomainError::client_at(
            field,
            format!("Invalid revision number. Number: {}", printable(revision)),
        )
        .hint("A revision is a whole number from 1.")),
    }
}

/// A taggable resource named by its full ARN (TagResource, UntagResource, ListTagsForResource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceArn {
    Cluster(String),
    Task { cluster: String, id: String },
    ContainerInstance { cluster: String, id: String },
    TaskDefinition { family: String, revision: u32 },
}

/// Parses a `resourceArn`. Tasks and container instances need the long ARN format.
pub fn parse_resource_arn(scope: &Scope, field: &str, arn: &str) -> DomainResult<ResourceArn> {
    if !arn.starts_with("arn:") {
        return Err(DomainError::invalid_parameter(
            field,
            format!(
                "'{}' is not an ARN: tagging takes the resource's full ARN.",
                printable(arn)
            ),
        ));
    }
    let parts = split_arn(scope, field, arn)?;
    let (kind, rest) = parts
        .resource
        .split_once('/')
        .ok_or_else(|| DomainError::invalid_parameter(field, format!("ARN '{}' names no resource.", printable(arn))))?;
    match kind {
        "cluster" => {
            validate_name(field, "Cluster name", rest)?;
            Ok(ResourceArn::Cluster(rest.to_string()))
        }
        "task" | "container-instance" => {
            let reference = parse_resource_ref(scope, field, arn, kind, "Resource")?;
            let cluster = reference.cluster.ok_or_else(|| {
                DomainError::invalid_parameter(
                    field,
                    format!(
                        "'{}' is a short-format ARN; tagging a {kind} needs the long format \
                         …:{kind}/<cluster>/<id>.",
                        printable(arn)
                    ),
                )
            })?;
            Ok(if kind == "task" {
                ResourceArn::Task {
                    cluster,
                    id: reference.id,
                }
            } else {
                ResourceArn::ContainerInstance {
                    cluster,
                    id: reference.id,
                }
            })
        }
        "task-definition" => match parse_task_definition_ref(scope, field, arn)? {
            TaskDefinitionRef::Revision(family, revision) => Ok(ResourceArn::TaskDefinition { family, revision }),
            TaskDefinitionRef::Family(_) => unreachable!("an ARN always carries a revision"),
        },
        other => Err(DomainError::invalid_parameter(
            field,
            format!(
                "Resources of type '{}' are not supported by taskledger; tag clusters, tasks, \
                 task definitions or container instances.",
                printable(other)
            ),
        )),
    }
}

/// Splits an ARN this store wrote into its scope and resource part (`cluster/prod`, …). Used when
/// folding events, where ARNs are trusted; `None` means the ARN is damaged.
pub fn split_stored_arn(arn: &str) -> Option<(Scope, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "ecs" {
        return None;
    }
    let scope = Scope::new(parts[3], parts[4]).ok()?;
    Some((scope, parts[5]))
}

/// The scope and cluster name of a stored cluster, task or container-instance ARN.
pub fn stored_cluster_of(arn: &str) -> Option<(Scope, String)> {
    let (scope, resource) = split_stored_arn(arn)?;
    let (kind, rest) = resource.split_once('/')?;
    let name = match kind {
        "cluster" => rest,
        "task" | "container-instance" | "container" => rest.split('/').next()?,
        _ => return None,
    };
    Some((scope, name.to_string()))
}

/// The last path segment of a stored ARN: the id of a task or container instance.
pub fn stored_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The id of a task's network-interface attachment: the task's own id in UUID form, so an
/// agent's attachment report finds its task without an index.
pub fn attachment_id_of_task(task_id: &str) -> String {
    match u128::from_str_radix(task_id, 16) {
        Ok(bits) if task_id.len() == 32 && is_resource_id(task_id) => uuid::Uuid::from_u128(bits).to_string(),
        _ => task_id.to_string(),
    }
}

/// The id in an attachment ARN (`arn:<partition>:ecs:<region>:<account>:attachment/<id>`, of
/// this region and account) or a bare attachment id.
pub fn parse_attachment_ref<'a>(scope: &Scope, field: &str, input: &'a str) -> DomainResult<&'a str> {
    let id = if input.starts_with("arn:") {
        split_arn(scope, field, input)?
            .resource
            .strip_prefix("attachment/")
            .ok_or_else(|| {
                DomainError::invalid_parameter(
                    field,
                    format!(
                        "'{}' is not an attachment ARN (expected …:attachment/<id>).",
                        printable(input)
                    ),
                )
            })?
    } else {
        input
    };
    if !is_resource_id(id) {
        return Err(
            DomainError::invalid_parameter(field, "Attachment Identifier is invalid").hint(format!(
                "'{}' is neither an attachment id nor its ARN.",
                printable(input)
            )),
        );
    }
    Ok(id)
}

/// The task an attachment id belongs to, if it is one `attachment_id_of_task` made.
pub fn task_id_of_attachment(id: &str) -> Option<String> {
    let groups: Vec<&str> = id.split('-').collect();
    let shaped = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
    let task_id = groups.concat();
    (shaped && task_id.len() == 32 && is_resource_id(&task_id)).then_some(task_id)
}

/// The randomness a command needs, drawn by the store before the command is decided, so that
/// deciding stays pure and replays and tests are deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdSeed(pub u128);

impl IdSeed {
    /// The `n`th 128-bit value derived from this seed (splitmix64 over both halves).
    pub fn derive(self, n: u64) -> u128 {
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let base = (self.0 as u64) ^ ((self.0 >> 64) as u64).rotate_left(17);
        let counter = base.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let hi = mix(counter);
        let lo = mix(counter ^ 0xd6e8_feb8_6659_fd93 ^ (self.0 >> 64) as u64);
        ((hi as u128) << 64) | lo as u128
    }

    /// A task or container-instance id: 32 lowercase hex characters.
    pub fn resource_id(self, n: u64) -> String {
        format!("{:032x}", self.derive(n))
    }

    /// A hyphenated version-4 UUID (container ids, attachment ids, request ids).
    pub fn uuid(self, n: u64) -> String {
        let v = (self.derive(n) & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        uuid::Uuid::from_u128(v).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("us-east-1", "123456789012").unwrap()
    }

    #[test]
    fn arns_use_the_long_format_with_scope() {
        let s = scope();
        assert_eq!(s.cluster_arn("prod"), "arn:aws:ecs:us-east-1:123456789012:cluster/prod");
        assert_eq!(
            s.task_arn("prod", "0123456789abcdef0123456789abcdef"),
            "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            s.task_definition_arn("web", 3),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"
        );
        assert_eq!(Scope::new("cn-north-1", "123456789012").unwrap().partition(), "aws-cn");
    }

    #[test]
    fn scope_rejects_malformed_region_and_account() {
        assert!(Scope::new("US-EAST-1", "123456789012").is_err());
        assert!(Scope::new("us-east-1", "12345").is_err());
        assert!(Scope::new("useast", "123456789012").is_err());
    }

    #[test]
    fn cluster_parameter_accepts_name_arn_and_defaults() {
        let s = scope();
        assert_eq!(parse_cluster(&s, "cluster", None).unwrap(), "default");
        assert_eq!(parse_cluster(&s, "cluster", Some("prod")).unwrap(), "prod");
        assert_eq!(
            parse_cluster(&s, "cluster", Some(&s.cluster_arn("prod"))).unwrap(),
            "prod"
        );
        assert!(parse_cluster(&s, "cluster", Some("bad name")).is_err());
        let other = Scope::new("eu-west-1", "123456789012").unwrap();
        let err = parse_cluster(&s, "cluster", Some(&other.cluster_arn("prod"))).unwrap_err();
        assert_eq!(err.exception, EcsException::InvalidParameterException);
        assert!(err.message.contains("eu-west-1"), "{}", err.message);
    }

    #[test]
    fn task_identifiers_accept_id_short_and_long_arns() {
        let s = scope();
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_task_ref(&s, "task", id).unwrap(),
            ResourceRef {
                id: id.into(),
                cluster: None
            }
        );
        let long = s.task_arn("prod", id);
        assert_eq!(
            parse_task_ref(&s, "task", &long).unwrap().cluster.as_deref(),
            Some("prod")
        );
        let short = format!("arn:aws:ecs:us-east-1:123456789012:task/{id}");
        assert_eq!(parse_task_ref(&s, "task", &short).unwrap().cluster, None);
        assert!(parse_task_ref(&s, "task", "0123456789ABCDEF0123456789ABCDEF").is_err());
        assert!(parse_task_ref(&s, "task", "nope").is_err());
        assert!(parse_task_ref(&s, "task", "12345678-1234-1234-1234-123456789012").is_ok());
    }

    #[test]
    fn task_definition_references_resolve_family_and_revision() {
        let s = scope();
        assert_eq!(
            parse_task_definition_ref(&s, "t", "web").unwrap(),
            TaskDefinitionRef::Family("web".into())
        );
        assert_eq!(
            parse_task_definition_ref(&s, "t", "web:7").unwrap(),
            TaskDefinitionRef::Revision("web".into(), 7)
        );
        assert_eq!(
            parse_task_definition_ref(&s, "t", &s.task_definition_arn("web", 2)).unwrap(),
            TaskDefinitionRef::Revision("web".into(), 2)
        );
        assert!(parse_task_definition_ref(&s, "t", "web:0").is_err());
        assert!(parse_task_definition_ref(&s, "t", "web:x").is_err());
        assert!(parse_task_definition_ref(&s, "t", "web:*").is_err());
    }

    #[test]
    fn tagging_needs_long_arns_for_tasks() {
        let s = scope();
        let id = "0123456789abcdef0123456789abcdef";
        assert!(matches!(
            parse_resource_arn(&s, "resourceArn", &s.task_arn("c", id)),
            Ok(ResourceArn::Task { .. })
        ));
        let short = format!("arn:aws:ecs:us-east-1:123456789012:task/{id}");
        assert!(parse_resource_arn(&s, "resourceArn", &short).is_err());
        assert!(matches!(
            parse_resource_arn(&s, "resourceArn", &s.task_definition_arn("f", 1)),
            Ok(ResourceArn::TaskDefinition { revision: 1, .. })
        ));
    }

    #[test]
    fn an_attachment_id_leads_back_to_its_task() {
        let task = IdSeed(7).resource_id(3);
        let attachment = attachment_id_of_task(&task);
        assert!(is_resource_id(&attachment) && attachment.len() == 36, "{attachment}");
        assert_eq!(task_id_of_attachment(&attachment).as_deref(), Some(task.as_str()));
        assert_eq!(task_id_of_attachment(&task), None, "not in UUID form");
        assert_eq!(task_id_of_attachment("eni-0123"), None);
    }

    #[test]
    fn derived_ids_are_deterministic_and_well_formed() {
        let seed = IdSeed(42);
        assert_eq!(seed.resource_id(0), IdSeed(42).resource_id(0));
        assert_ne!(seed.resource_id(0), seed.resource_id(1));
        assert!(is_resource_id(&seed.resource_id(3)));
        let uuid = seed.uuid(5);
        assert!(is_resource_id(&uuid), "{uuid}");
        assert_eq!(&uuid[14..15], "4");
    }
}
