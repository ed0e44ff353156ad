//! The ECS quotas and limits taskledger enforces (ECS_SEMANTICS §14), in one place.
//! Does not enforce them: the validating code cites these constants.

/// Tasks per RunTask (`count`).
pub const RUN_TASK_COUNT_MAX: i32 = 10;
/// Container instances per StartTask.
pub const START_TASK_INSTANCES_MAX: usize = 10;
/// Container instances one UpdateContainerInstancesState names at most.
pub const STATE_UPDATE_INSTANCES_MAX: usize = 10;
/// Attachments one SubmitAttachmentStateChanges reports at most.
pub const ATTACHMENT_REPORTS_MAX: usize = 100;
/// Task definitions one DeleteTaskDefinitions names at most.
pub const TASK_DEFINITIONS_DELETE_MAX: usize = 10;
/// Identifiers per DescribeTasks / DescribeContainerInstances / DescribeClusters.
pub const DESCRIBE_IDS_MAX: usize = 100;
/// `maxResults` on List* operations (also the default page size).
pub const MAX_RESULTS_MAX: i32 = 100;
/// Clusters per account and region.
pub const CLUSTERS_MAX: usize = 10_000;
/// Revisions per task-definition family (deregistered ones count).
pub const REVISIONS_PER_FAMILY_MAX: u32 = 1_000_000;
/// Size of a task definition, as ECS JSON.
pub const TASK_DEFINITION_BYTES_MAX: usize = 64 * 1024;
/// Containers per task definition.
pub const CONTAINERS_PER_TASK_DEFINITION_MAX: usize = 10;
/// Placement constraints per task (definition + request) and strategies per task.
pub const PLACEMENT_CONSTRAINTS_MAX: usize = 10;
pub const PLACEMENT_STRATEGIES_MAX: usize = 5;
/// Items in a capacity provider strategy.
pub const CAPACITY_PROVIDER_STRATEGY_MAX: usize = 20;
/// Subnets and security groups in an awsvpcConfiguration.
pub const SUBNETS_MAX: usize = 16;
pub const SECURITY_GROUPS_MAX: usize = 5;
/// User tags per resource (`aws:` tags do not count), key and value lengths.
pub const TAGS_MAX: usize = 50;
pub const TAG_KEY_MAX: usize = 128;
pub const TAG_VALUE_MAX: usize = 256;
/// The overrides object of RunTask/StartTask, as ECS JSON.
pub const OVERRIDES_JSON_MAX: usize = 8192;
/// RunTask clientToken length (each character ASCII 33..=126).
pub const CLIENT_TOKEN_MAX: usize = 64;
/// How long a clientToken stays bound to its first request, in seconds.
pub const CLIENT_TOKEN_TTL_SECONDS: i64 = 24 * 60 * 60;
/// `startedBy` length for RunTask and for StartTask.
pub const STARTED_BY_RUN_TASK_MAX: usize = 128;
pub const STARTED_BY_START_TASK_MAX: usize = 36;
/// Cluster names, families, container and volume names.
pub const NAME_MAX: usize = 255;
/// A container's `reason` text; longer reports are truncated.
pub const CONTAINER_REASON_MAX: usize = 1024;
/// A task's `stoppedReason` text (StopTask `reason`); longer ones are refused.
pub const STOPPED_REASON_MAX: usize = 1024;
/// Attribute names and values.
pub const ATTRIBUTE_NAME_MAX: usize = 128;
pub const ATTRIBUTE_VALUE_MAX: usize = 128;
/// Attributes one PutAttributes/DeleteAttributes names at most.
pub const ATTRIBUTES_PER_CALL_MAX: usize = 10;
/// Custom attributes (not `ecs.*`) one container instance holds at most.
pub const CUSTOM_ATTRIBUTES_MAX: usize = 10;
/// Length of `group`.
pub const GROUP_MAX: usize = 255;
/// Generic bound on free-text request strings taskledger stores (reasons, digests, ids).
pub const FREE_TEXT_MAX: usize = 4096;
