//! Client commands for people at a terminal: `clusters`, `task-definitions`, `tasks`, `instances`.
//! Each builds its request as ECS JSON (so enum spellings and member names are ECS's and errors
//! name the member), calls the server over gRPC and prints the response as pretty ECS JSON.
//! Does not interpret responses; failures print `<ExceptionName>: <message>` and exit non-zero.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use prost::{Message, Name};
use serde_json::{json, Value};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::api::auth::BearerToken;
use tonic::{Code, Request, Response, Status};
use tonic_types::StatusExt;

use crate::api::{status, REGION_HEADER};
use crate::ecs_json::{self, WriteOptions};
use crate::proto::v1::ecs_client::EcsClient;

/// Largest response the client accepts (a DescribeTasks of 100 big tasks stays far below).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Where the server is and which region to work in, then what to do.
#[derive(Debug, Args)]
pub struct Client<C: Subcommand> {
    /// The server's gRPC endpoint.
    #[arg(
        long,
        global = true,
        env = "TASKLEDGER_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    endpoint: String,
    /// Region to work in, sent as `x-taskledger-region` metadata (default: the server's region).
    #[arg(long, global = true, env = "TASKLEDGER_REGION")]
    region: Option<String>,
    #[command(flatten)]
    tls: super::connect::TlsClientArgs,
    #[command(subcommand)]
    command: C,
}

#[derive(Debug, Subcommand)]
pub enum ClustersCommand {
    /// CreateCluster (returns the cluster unchanged if it is already ACTIVE).
    Create {
        /// Cluster name.
        #[arg(default_value = "default")]
        name: String,
        /// A tag, `key=value` (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// DescribeClusters (missing ones are listed in `failures`).
    Describe {
        /// Cluster names or ARNs (default: `default`).
        clusters: Vec<String>,
        /// Include the clusters' tags.
        #[arg(long)]
        include_tags: bool,
    },
    /// ListClusters (ACTIVE clusters).
    List {
        #[command(flatten)]
        page: Page,
    },
    /// DeleteCluster (it must hold no tasks or container instances).
    Delete {
        /// Cluster name or ARN.
        cluster: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TaskDefinitionsCommand {
    /// RegisterTaskDefinition from the ECS JSON `aws ecs register-task-definition --cli-input-json` takes.
    Register {
        /// The JSON file (`-` reads stdin).
        #[arg(long)]
        file: PathBuf,
    },
    /// DescribeTaskDefinition.
    Describe {
        /// `family`, `family:revision` or ARN.
        task_definition: String,
        /// Include the task definition's tags.
        #[arg(long)]
        include_tags: bool,
    },
    /// ListTaskDefinitions.
    List {
        /// Only families starting with this text.
        #[arg(long)]
        family_prefix: Option<String>,
        /// ACTIVE, INACTIVE or DELETE_IN_PROGRESS.
        #[arg(long)]
        status: Option<String>,
        /// ASC or DESC.
        #[arg(long)]
        sort: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// DeregisterTaskDefinition (the revision becomes INACTIVE).
    Deregister {
        /// `family:revision` or ARN.
        task_definition: String,
    },
    /// DeleteTaskDefinitions (INACTIVE revisions become DELETE_IN_PROGRESS; others are failures).
    Delete {
        /// `family:revision`s or ARNs (at most 10).
        #[arg(required = true)]
        task_definitions: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// RunTask.
    Run(RunArgs),
    /// DescribeTasks (unknown ones are listed in `failures`).
    Describe {
        /// Task ids or ARNs.
        #[arg(required = true)]
        tasks: Vec<String>,
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// Include the tasks' tags.
        #[arg(long)]
        include_tags: bool,
    },
    /// StopTask.
    Stop {
        /// Task id or ARN.
        task: String,
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// Shown later as `stoppedReason`.
        #[arg(long)]
        reason: Option<String>,
    },
    /// ListTasks (desiredStatus RUNNING unless told otherwise).
    List {
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// Only tasks of this task-definition family.
        #[arg(long)]
        family: Option<String>,
        /// Only tasks started with this `startedBy`.
        #[arg(long)]
        started_by: Option<String>,
        /// Only tasks on this container instance (id or ARN).
        #[arg(long)]
        container_instance: Option<String>,
        /// RUNNING (the default), PENDING or STOPPED.
        #[arg(long)]
        desired_status: Option<String>,
        /// EC2, FARGATE, EXTERNAL or MANAGED_INSTANCES.
        #[arg(long)]
        launch_type: Option<String>,
        #[command(flatten)]
        page: Page,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Cluster name or ARN (default: `default`).
    #[arg(long)]
    cluster: Option<String>,
    /// `family` (latest ACTIVE revision), `family:revision` or ARN.
    #[arg(long, required_unless_present = "cli_input_json")]
    task_definition: Option<String>,
    /// Tasks to start, 1–10.
    #[arg(long)]
    count: Option<i32>,
    /// EC2, FARGATE, EXTERNAL or MANAGED_INSTANCES.
    #[arg(long)]
    launch_type: Option<String>,
    /// awsvpc subnets, comma-separated.
    #[arg(long, value_delimiter = ',')]
    subnets: Vec<String>,
    /// awsvpc security groups, comma-separated.
    #[arg(long, value_delimiter = ',')]
    security_groups: Vec<String>,
    /// ENABLED or DISABLED.
    #[arg(long)]
    assign_public_ip: Option<String>,
    /// Who started the task, up to 128 characters (ListTasks can filter on it).
    #[arg(long)]
    started_by: Option<String>,
    /// Task group (default: `family:<family>`).
    #[arg(long)]
    group: Option<String>,
    /// Makes retries idempotent (1–64 printable ASCII characters).
    #[arg(long)]
    client_token: Option<String>,
    /// Fargate platform version (default: LATEST).
    #[arg(long)]
    platform_version: Option<String>,
    /// A tag, `key=value` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// A RunTask request in ECS JSON (`-` reads stdin); flags override its members.
    #[arg(long)]
    cli_input_json: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum InstancesCommand {
    /// RegisterContainerInstance (defaults: CPU 4096, MEMORY 7482 MiB).
    Register {
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// CPU units the instance offers.
        #[arg(long)]
        cpu: Option<i32>,
        /// Memory the instance offers, in MiB.
        #[arg(long)]
        memory: Option<i32>,
        /// An attribute, `name` or `name=value` (repeatable).
        #[arg(long = "attribute", value_name = "NAME[=VALUE]")]
        attributes: Vec<String>,
        /// A tag, `key=value` (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// ListContainerInstances.
    List {
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// ACTIVE, DRAINING, REGISTERING, DEREGISTERING or REGISTRATION_FAILED.
        #[arg(long)]
        status: Option<String>,
        /// A cluster query language expression.
        #[arg(long)]
        filter: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// DescribeContainerInstances (unknown ones are listed in `failures`).
    Describe {
        /// Container instance ids or ARNs.
        #[arg(required = true)]
        instances: Vec<String>,
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// Include the instances' tags.
        #[arg(long)]
        include_tags: bool,
    },
    /// DeregisterContainerInstance.
    Deregister {
        /// Container instance id or ARN.
        instance: String,
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// Deregister even with tasks on it (they are told to stop).
        #[arg(long)]
        force: bool,
    },
    /// PutAttributes: sets a custom attribute on an instance (placement constraints match it).
    PutAttribute {
        /// Container instance id or ARN.
        instance: String,
        /// The attribute's name.
        name: String,
        /// The attribute's value (none: a name-only attribute).
        value: Option<String>,
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// DeleteAttributes: removes a custom attribute from an instance.
    DeleteAttribute {
        /// Container instance id or ARN.
        instance: String,
        /// The attribute's name.
        name: String,
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// ListAttributes: the attributes of a cluster's instances.
    Attributes {
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// Only attributes with this name.
        #[arg(long)]
        name: Option<String>,
        /// Only attributes with this value (needs `--name`).
        #[arg(long)]
        value: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// UpdateContainerInstancesState: DRAINING takes instances out of placement, ACTIVE puts
    /// them back.
    SetState {
        /// ACTIVE or DRAINING.
        status: String,
        /// Container instance ids or ARNs (at most 10).
        #[arg(required = true)]
        instances: Vec<String>,
        /// Cluster name or ARN (default: `default`).
        #[arg(long)]
        cluster: Option<String>,
    },
}

/// Pagination flags of List* commands.
#[derive(Debug, Args)]
pub struct Page {
    /// Items per page, 1–100.
    #[arg(long)]
    max_results: Option<i32>,
    /// The `nextToken` of the previous page.
    #[arg(long)]
    next_token: Option<String>,
}

/// A client command of any resource.
#[derive(Debug)]
pub enum Resource {
    Clusters(ClustersCommand),
    TaskDefinitions(TaskDefinitionsCommand),
    Tasks(TasksCommand),
    Instances(InstancesCommand),
}

impl<C: Subcommand> Client<C> {
    /// Runs the command against the server and prints the response.
    pub fn run(self, wrap: impl FnOnce(C) -> Resource) -> anyhow::Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let Client {
            endpoint,
            region,
            tls,
            command,
        } = self;
        runtime.block_on(async {
            let mut ecs = Ecs::connect(&endpoint, region.as_deref(), &tls).await?;
            let response = ecs.execute(wrap(command)).await?;
            println!("{}", serde_json::to_string_pretty(&response)?);
            Ok(ExitCode::SUCCESS)
        })
    }
}

/// A connection to the server and the region metadata each call carries.
struct Ecs {
    client: EcsClient<InterceptedService<Channel, BearerToken>>,
    region: Option<AsciiMetadataValue>,
}

/// Calls one RPC with the region metadata and renders the reply as ECS JSON.
macro_rules! call {
    ($ecs:ident.$method:ident($request:expr)) => {{
        let request = $ecs.request($request);
        rendered($ecs.client.$method(request).await)
    }};
}

impl Ecs {
    async fn connect(endpoint: &str, region: Option<&str>, tls: &super::connect::TlsClientArgs) -> anyhow::Result<Ecs> {
        let region = region
            .map(|r| {
                r.parse::<AsciiMetadataValue>()
                    .map_err(|_| anyhow!("--region '{r}' is not printable ASCII"))
            })
            .transpose()?;
        let client = EcsClient::with_interceptor(tls.channel(endpoint).await?, tls.bearer()?)
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(Ecs { client, region })
    }

    fn request<T>(&self, body: T) -> Request<T> {
        let mut request = Request::new(body);
        if let Some(region) = &self.region {
            request.metadata_mut().insert(REGION_HEADER, region.clone());
        }
        request
    }

    async fn execute(&mut self, command: Resource) -> anyhow::Result<Value> {
        let ecs = self;
        match command {
            Resource::Clusters(command) => match command {
                ClustersCommand::Create { name, tags } => {
                    call!(ecs.create_cluster(parse(json!({"clusterName": name, "tags": tags_json(&tags)?}))?))
                }
                ClustersCommand::Describe { clusters, include_tags } => {
                    call!(ecs.describe_clusters(parse(json!({"clusters": clusters, "include": include(include_tags)}))?))
                }
                ClustersCommand::List { page } => call!(ecs.list_clusters(parse(page.json())?)),
                ClustersCommand::Delete { cluster } => call!(ecs.delete_cluster(parse(json!({"cluster": cluster}))?)),
            },
            Resource::TaskDefinitions(command) => match command {
                TaskDefinitionsCommand::Register { file } => {
                    call!(ecs.register_task_definition(parse(read_json(&file)?)?))
                }
                TaskDefinitionsCommand::Describe {
                    task_definition,
                    include_tags,
                } => call!(ecs.describe_task_definition(parse(
                    json!({"taskDefinition": task_definition, "include": include(include_tags)})
                )?)),
                TaskDefinitionsCommand::List {
                    family_prefix,
                    status,
                    sort,
                    page,
                } => {
                    let mut body = page.json();
                    body["familyPrefix"] = json!(family_prefix);
                    body["status"] = json!(status);
                    body["sort"] = json!(sort);
                    call!(ecs.list_task_definitions(parse(body)?))
                }
                TaskDefinitionsCommand::Deregister { task_definition } => {
                    call!(ecs.deregister_task_definition(parse(json!({"taskDefinition": task_definition}))?))
                }
                TaskDefinitionsCommand::Delete { task_definitions } => {
                    call!(ecs.delete_task_definitions(parse(json!({"taskDefinitions": task_definitions}))?))
                }
            },
            Resource::Tasks(command) => match command {
                TasksCommand::Run(args) => call!(ecs.run_task(parse(args.json()?)?)),
                TasksCommand::Describe {
                    tasks,
                    cluster,
                    include_tags,
                } => call!(ecs.describe_tasks(parse(
                    json!({"cluster": cluster, "tasks": tasks, "include": include(include_tags)})
                )?)),
                TasksCommand::Stop { task, cluster, reason } => {
                    call!(ecs.stop_task(parse(json!({"cluster": cluster, "task": task, "reason": reason}))?))
                }
                TasksCommand::List {
                    cluster,
                    family,
                    started_by,
                    container_instance,
                    desired_status,
                    launch_type,
                    page,
                } => {
                    let mut body = page.json();
                    body["cluster"] = json!(cluster);
                    body["family"] = json!(family);
                    body["startedBy"] = json!(started_by);
                    body["containerInstance"] = json!(container_instance);
                    body["desiredStatus"] = json!(desired_status);
                    body["launchType"] = json!(launch_type);
                    call!(ecs.list_tasks(parse(body)?))
                }
            },
            Resource::Instances(command) => match command {
                InstancesCommand::Register {
                    cluster,
                    cpu,
                    memory,
                    attributes,
                    tags,
                } => {
                    let mut resources = Vec::new();
                    if let Some(cpu) = cpu {
                        resources.push(json!({"name": "CPU", "type": "INTEGER", "integerValue": cpu}));
                    }
                    if let Some(memory) = memory {
                        resources.push(json!({"name": "MEMORY", "type": "INTEGER", "integerValue": memory}));
                    }
                    let attributes: Vec<Value> = attributes
                        .iter()
                        .map(|a| match a.split_once('=') {
                            Some((name, value)) => json!({"name": name, "value": value}),
                            None => json!({"name": a}),
                        })
                        .collect();
                    call!(ecs.register_container_instance(parse(json!({
                        "cluster": cluster,
                        "totalResources": resources,
                        "attributes": attributes,
                        "tags": tags_json(&tags)?,
                    }))?))
                }
                InstancesCommand::List {
                    cluster,
                    status,
                    filter,
                    page,
                } => {
                    let mut body = page.json();
                    body["cluster"] = json!(cluster);
                    body["status"] = json!(status);
                    body["filter"] = json!(filter);
                    call!(ecs.list_container_instances(parse(body)?))
                }
                InstancesCommand::Describe {
                    instances,
                    cluster,
                    include_tags,
                } => call!(ecs.describe_container_instances(parse(
                    json!({"cluster": cluster, "containerInstances": instances, "include": include(include_tags)})
                )?)),
                InstancesCommand::Deregister {
                    instance,
                    cluster,
                    force,
                } => call!(ecs.deregister_container_instance(parse(
                    json!({"cluster": cluster, "containerInstance": instance, "force": force.then_some(true)})
                )?)),
                InstancesCommand::PutAttribute {
                    instance,
                    name,
                    value,
                    cluster,
                } => call!(ecs.put_attributes(parse(json!({
                    "cluster": cluster,
                    "attributes": [{"name": name, "value": value, "targetType": "container-instance", "targetId": instance}]
                }))?)),
                InstancesCommand::DeleteAttribute { instance, name, cluster } => {
                    call!(ecs.delete_attributes(parse(json!({
                        "cluster": cluster,
                        "attributes": [{"name": name, "targetType": "container-instance", "targetId": instance}]
                    }))?))
                }
                InstancesCommand::Attributes {
                    cluster,
                    name,
                    value,
                    page,
                } => {
                    let mut body = page.json();
                    body["cluster"] = json!(cluster);
                    body["targetType"] = json!("container-instance");
                    body["attributeName"] = json!(name);
                    body["attributeValue"] = json!(value);
                    call!(ecs.list_attributes(parse(body)?))
                }
                InstancesCommand::SetState {
                    status,
                    instances,
                    cluster,
                } => call!(ecs.update_container_instances_state(parse(
                    json!({"cluster": cluster, "containerInstances": instances, "status": status})
                )?)),
            },
        }
    }
}

impl Page {
    fn json(&self) -> Value {
        json!({"maxResults": self.max_results, "nextToken": self.next_token})
    }
}

impl RunArgs {
    /// The RunTask request: the `--cli-input-json` document, if any, with the flags laid over it.
    fn json(self) -> anyhow::Result<Value> {
        let mut body = match &self.cli_input_json {
            Some(path) => read_json(path)?,
            None => json!({}),
        };
        let object = body
            .as_object_mut()
            .ok_or_else(|| anyhow!("--cli-input-json must hold a JSON object"))?;
        let mut set = |member: &str, value: Value| {
            if !value.is_null() {
                object.insert(member.to_string(), value);
            }
        };
        set("cluster", json!(self.cluster));
        set("taskDefinition", json!(self.task_definition));
        set("count", json!(self.count));
        set("launchType", json!(self.launch_type));
        set("startedBy", json!(self.started_by));
        set("group", json!(self.group));
        set("clientToken", json!(self.client_token));
        set("platformVersion", json!(self.platform_version));
        if !self.tags.is_empty() {
            set("tags", tags_json(&self.tags)?);
        }
        if !self.subnets.is_empty() || !self.security_groups.is_empty() || self.assign_public_ip.is_some() {
            set(
                "networkConfiguration",
                json!({"awsvpcConfiguration": {
                    "subnets": self.subnets,
                    "securityGroups": self.security_groups,
                    "assignPublicIp": self.assign_public_ip,
                }}),
            );
        }
        Ok(body)
    }
}

/// Reads ECS JSON into a request, after dropping `null` members (absent and null mean the same).
fn parse<M: Message + Name + Default>(mut body: Value) -> anyhow::Result<M> {
    prune_nulls(&mut body);
    ecs_json::from_value(&body).with_context(|| format!("invalid {} input", M::NAME))
}

fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(members) => {
            members.retain(|_, member| !member.is_null());
            members.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("reading stdin")?;
        bytes
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// `key=value` flags as ECS tags.
fn tags_json(tags: &[String]) -> anyhow::Result<Value> {
    let tags = tags
        .iter()
        .map(|tag| {
            let (key, value) = tag
                .split_once('=')
                .ok_or_else(|| anyhow!("--tag '{tag}' must be KEY=VALUE (the value may be empty)"))?;
            Ok(json!({"key": key, "value": value}))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Value::Array(tags))
}

fn include(tags: bool) -> Value {
    if tags {
        json!(["TAGS"])
    } else {
        Value::Null
    }
}

/// The reply as ECS JSON, or the failure as `<ExceptionName>: <message> (<hint>)`.
fn rendered<M: Message + Name>(result: Result<Response<M>, Status>) -> anyhow::Result<Value> {
    let response = result.map_err(describe_failure)?.into_inner();
    Ok(ecs_json::to_value(&response, &WriteOptions::default()))
}

pub(super) fn describe_failure(failure: Status) -> anyhow::Error {
    match status::exception_name(&failure) {
        Some(exception) => match failure.get_details_localized_message() {
            Some(hint) => anyhow!("{exception}: {} ({})", failure.message(), hint.message),
            None => anyhow!("{exception}: {}", failure.message()),
        },
        None if failure.code() == Code::Unavailable => {
            anyhow!(
                "the server is unavailable: {} (is `taskledger serve` running? see --endpoint)",
                failure.message()
            )
        }
        None => anyhow!("gRPC {:?}: {}", failure.code(), failure.message()),
    }
}
