"""Drives a running `taskledger serve --aws-listen ... --simulate-agent` with boto3 and the AWS CLI,
unmodified, as a person using taskledger as a local ECS would. Exits non-zero on the first surprise.

Usage: python3 tests/clients/aws_sdk.py http://127.0.0.1:PORT
"""
import json
import os
import subprocess
import sys
import tempfile

import boto3
import botocore

ENDPOINT = sys.argv[1]
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
ecs = boto3.client("ecs", endpoint_url=ENDPOINT, region_name="us-east-1")
checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    checks += 1
    print(f"ok - {what}")


def raises(exception, call, what, message=None):
    """`call` must raise `exception`; with `message`, ECS's exact text (never prefixed with the name)."""
    try:
        call()
    except exception as error:
        got = error.response["Error"]["Message"]
        if message is not None and got != message:
            raise SystemExit(f"FAILED: {what}: message {got!r}, expected {message!r}")
        check(True, f"{what} ({error.response['Error']['Code']}: {got})")
        return error
    raise SystemExit(f"FAILED: {what}: no {exception.__name__}")


TASK_DEFINITION = {
    "family": "web",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {"name": "app", "image": "nginx:1.25", "essential": True,
         "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}
    ],
    "tags": [{"key": "team", "value": "blue"}],
}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-12345678"], "assignPublicIp": "DISABLED"}}

# Clusters and task definitions.
cluster = ecs.create_cluster(clusterName="sdk", tags=[{"key": "env", "value": "ci"}])["cluster"]
check(cluster["status"] == "ACTIVE" and cluster["clusterArn"].endswith(":cluster/sdk"), "create_cluster")
check(cluster["tags"] == [{"key": "env", "value": "ci"}], "create_cluster answers with the tags given")
check("tags" not in ecs.create_cluster(clusterName="untagged")["cluster"], "create_cluster leaves out tags: []")
described = ecs.describe_clusters(clusters=["sdk", "untagged"])["clusters"]
check(all("tags" not in c for c in described), "describe_clusters leaves out tags without include TAGS")
described = ecs.describe_clusters(clusters=["sdk", "untagged"], include=["TAGS"])["clusters"]
check([c["tags"] for c in described] == [[{"key": "env", "value": "ci"}], []],
      "describe_clusters include TAGS: tags: [] for an untagged cluster")
registered = ecs.register_task_definition(**TASK_DEFINITION)["taskDefinition"]
check(registered["revision"] >= 1 and registered["status"] == "ACTIVE", "register_task_definition from JSON")
described = ecs.describe_task_definition(taskDefinition="web", include=["TAGS"])
check(described["tags"] == [{"key": "team", "value": "blue"}], "describe_task_definition with include TAGS")
check("tags" not in ecs.describe_task_definition(taskDefinition="web"),
      "describe_task_definition leaves out tags without include TAGS")

# RunTask with count, DescribeTasks with a MISSING failure.
run = ecs.run_task(cluster="sdk", taskDefinition="web", count=3, launchType="FARGATE",
                   networkConfiguration=NETWORK, tags=[{"key": "job", "value": "ci"}])
check(len(run["tasks"]) == 3 and run["failures"] == [], "run_task count=3")
arns = [t["taskArn"] for t in run["tasks"]]
check(all(t["lastStatus"] == "PROVISIONING" and t["version"] == 1 for t in run["tasks"]), "new Fargate tasks")
check(hasattr(run["tasks"][0]["createdAt"], "year"), "timestamps parse as datetimes")
missing_arn = arns[0][:-32] + "0" * 32
described = ecs.describe_tasks(cluster="sdk", tasks=[arns[0], missing_arn])
check(len(described["tasks"]) == 1, "describe_tasks finds the task")
check(described["failures"] == [{"arn": missing_arn, "reason": "MISSING"}], "describe_tasks MISSING failure")
check("tags" not in described["tasks"][0], "describe_tasks leaves out tags without include TAGS")
tagged = ecs.describe_tasks(cluster="sdk", tasks=[arns[0]], include=["TAGS"])["tasks"][0]
check({"key": "job", "value": "ci"} in tagged["tags"], "describe_tasks include TAGS")

# Waiters need the simulated agent.
ecs.get_waiter("tasks_running").wait(cluster="sdk", tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
check(True, "tasks_running waiter")

# The agent's attachment reports find their task.
attachment = run["tasks"][1]["attachments"][0]
attachment_arn = arns[1].split(":task/")[0] + ":attachment/" + attachment["id"]
ack = ecs.submit_attachment_state_changes(cluster="sdk", attachments=[{"attachmentArn": attachment_arn,
                                                                        "status": "ATTACHED"}])
check(ack["acknowledgment"] == "ACK", "submit_attachment_state_changes")
check(ecs.describe_tasks(cluster="sdk", tasks=[arns[1]])["tasks"][0]["attachments"][0]["status"] == "ATTACHED",
      "describe_tasks shows the reported attachment status")

# ListTasks paginated over more than one page.
more = ecs.run_task(cluster="sdk", taskDefinition="web", count=10, launchType="FARGATE", networkConfiguration=NETWORK)
listed = []
pages = 0
for page in ecs.get_paginator("list_tasks").paginate(cluster="sdk", PaginationConfig={"PageSize": 4}):
    pages += 1
    listed += page["taskArns"]
check(pages >= 4 and sorted(listed) == sorted(arns + [t["taskArn"] for t in more["tasks"]]),
      f"list_tasks paginator ({pages} pages)")

# StopTask, then the tasks_stopped waiter.
stopped = ecs.stop_task(cluster="sdk", task=arns[0], reason="ci done")["task"]
check(stopped["desiredStatus"] == "STOPPED" and stopped["stopCode"] == "UserInitiated", "stop_task")
ecs.get_waiter("tasks_stopped").wait(cluster="sdk", tasks=[arns[0]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
final = ecs.describe_tasks(cluster="sdk", tasks=[arns[0]])["tasks"][0]
check(final["lastStatus"] == "STOPPED" and final["stoppedReason"] == "ci done", "tasks_stopped waiter")

# Tags on the cluster.
ecs.tag_resource(resourceArn=cluster["clusterArn"], tags=[{"key": "owner", "value": "sdk"}])
tags = ecs.list_tags_for_resource(resourceArn=cluster["clusterArn"])["tags"]
check({"key": "owner", "value": "sdk"} in tags and {"key": "env", "value": "ci"} in tags, "tag_resource")
ecs.untag_resource(resourceArn=cluster["clusterArn"], tagKeys=["owner"])
check(ecs.list_tags_for_resource(resourceArn=cluster["clusterArn"])["tags"] == [{"key": "env", "value": "ci"}],
      "untag_resource")

# Errors arrive as their botocore exception classes.
raises(ecs.exceptions.ClusterNotFoundException,
       lambda: ecs.run_task(cluster="nope", taskDefinition="web", launchType="FARGATE", networkConfiguration=NETWORK),
       "ClusterNotFoundException", "Cluster not found.")
# ECS's own texts, compared verbatim as programs written against ECS do.
raises(ecs.exceptions.ClientException,
       lambda: ecs.describe_container_instances(cluster="nope", containerInstances=[]),
       "the request is checked before the cluster", "Container Instances cannot be empty.")
raises(ecs.exceptions.InvalidParameterException, lambda: ecs.describe_tasks(cluster="sdk", tasks=[]),
       "DescribeTasks with no tasks", "Tasks cannot be empty.")
raises(ecs.exceptions.InvalidParameterException, lambda: ecs.stop_task(cluster="sdk", task="0" * 32),
       "StopTask of an unknown task", "The referenced task was not found.")
raises(ecs.exceptions.InvalidParameterException, lambda: ecs.stop_task(cluster="sdk", task="not-a-task"),
       "StopTask of a malformed id", "Task Identifier is invalid")
raises(ecs.exceptions.ClientException, lambda: ecs.deregister_task_definition(taskDefinition="web"),
       "DeregisterTaskDefinition without a revision", "Revision is missing.")
raises(ecs.exceptions.ClientException, lambda: ecs.deregister_task_definition(taskDefinition="web:x"),
       "a revision that is not a number", "Invalid revision number. Number: x")
raises(ecs.exceptions.InvalidParameterException,
       lambda: ecs.run_task(cluster="sdk", taskDefinition="web", launchType="FARGATE"),
       "awsvpc without a network configuration",
       "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
raises(ecs.exceptions.InvalidParameterException,
       lambda: ecs.run_task(cluster="sdk", taskDefinition="web", count=11, launchType="FARGATE",
                            networkConfiguration=NETWORK),
       "InvalidParameterException for count 11")
def register(**changes):
    return lambda: ecs.register_task_definition(**{k: v for k, v in TASK_DEFINITION.items() if k != "tags"} | changes)


raises(ecs.exceptions.ClientException, register(containerDefinitions=[{"image": "nginx"}]),
       "a container without a name", "Container.name should not be null or empty.")
raises(ecs.exceptions.ClientException, register(containerDefinitions=[{"name": "app"}]),
       "a container without an image", "Container.image should not be null or empty.")
raises(ecs.exceptions.ClientException, register(pidMode="host"), "Fargate with pidMode host",
       "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.")
raises(ecs.exceptions.ClientException,
       lambda: ecs.register_task_definition(family="ec2", networkMode="bridge", requiresCompatibilities=["EC2"],
                                            containerDefinitions=[{"name": "db", "image": "postgres"}]),
       "an EC2 container without memory",
       "Invalid setting for container 'db'. At least one of 'memory' or 'memoryReservation' must be specified.")
raises(ecs.exceptions.ClientException, lambda: ecs.describe_task_definition(taskDefinition="ghost"),
       "ClientException for an unknown task definition", "Unable to describe task definition.")
ecs.run_task(cluster="sdk", taskDefinition="web", count=1, launchType="FARGATE", networkConfiguration=NETWORK,
             clientToken="ci-token-1")
conflict = raises(ecs.exceptions.ConflictException,
                  lambda: ecs.run_task(cluster="sdk", taskDefinition="web", count=2, launchType="FARGATE",
                                       networkConfiguration=NETWORK, clientToken="ci-token-1"),
                  "ConflictException for a clientToken reused with other parameters")
check(len(conflict.response.get("resourceIds", [])) == 1, "ConflictException carries resourceIds")
raises(ecs.exceptions.ClusterContainsTasksException, lambda: ecs.delete_cluster(cluster="sdk"),
       "ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.")

# DeleteTaskDefinitions: only INACTIVE revisions; the rest come back in failures.
old = ecs.register_task_definition(**{k: v for k, v in TASK_DEFINITION.items() if k != "tags"} | {"family": "old"})
old_arn = old["taskDefinition"]["taskDefinitionArn"]
kept = ecs.register_task_definition(**{k: v for k, v in TASK_DEFINITION.items() if k != "tags"} | {"family": "old"})
ecs.deregister_task_definition(taskDefinition=old_arn)
deleted = ecs.delete_task_definitions(taskDefinitions=[old_arn, "old:2", "old:9"])
check([d["status"] for d in deleted["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
      and "deleteRequestedAt" in deleted["taskDefinitions"][0], "delete_task_definitions of an INACTIVE revision")
check([f["arn"].rsplit("/", 1)[1] for f in deleted["failures"]] == ["old:2", "old:9"],
      "delete_task_definitions: an ACTIVE and a missing revision are failures")
check(ecs.describe_task_definition(taskDefinition="old:1")["taskDefinition"]["status"] == "DELETE_IN_PROGRESS",
      "a deleted revision is described as DELETE_IN_PROGRESS")
check(old_arn not in ecs.list_task_definitions(familyPrefix="old", status="INACTIVE")["taskDefinitionArns"]
      and ecs.list_task_definitions(familyPrefix="old", status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == [old_arn],
      "list_task_definitions: a deleted revision is listed as DELETE_IN_PROGRESS only")
raises(ecs.exceptions.InvalidParameterException, lambda: ecs.delete_task_definitions(taskDefinitions=[]),
       "delete_task_definitions with none", "Task Definitions cannot be empty.")

# Container instances: DRAINING takes one out of placement, ACTIVE puts it back.
ecs.create_cluster(clusterName="ec2")
ecs.register_task_definition(family="svc", networkMode="bridge", requiresCompatibilities=["EC2"],
                             containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}])
instance = ecs.register_container_instance(
    cluster="ec2", totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 2048},
                                   {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}],
    tags=[{"key": "rack", "value": "a"}])["containerInstance"]
drained = ecs.update_container_instances_state(cluster="ec2", containerInstances=[instance["containerInstanceArn"]],
                                               status="DRAINING")
check([i["status"] for i in drained["containerInstances"]] == ["DRAINING"] and drained["failures"] == [],
      "update_container_instances_state to DRAINING")
check("tags" not in drained["containerInstances"][0], "update_container_instances_state leaves out tags")
refused = ecs.run_task(cluster="ec2", taskDefinition="svc", launchType="EC2")
check(refused["tasks"] == [] and [f["reason"] for f in refused["failures"]] == ["DRAINING"],
      "run_task places nothing on a DRAINING instance and says why")
listed = ecs.list_container_instances(cluster="ec2", status="DRAINING")["containerInstanceArns"]
check(listed == [instance["containerInstanceArn"]], "list_container_instances status DRAINING")
raises(ecs.exceptions.InvalidParameterException,
       lambda: ecs.update_container_instances_state(cluster="ec2", containerInstances=[instance["containerInstanceArn"]],
                                                    status="REGISTERING"),
       "update_container_instances_state to a status only ECS sets")
ecs.update_container_instances_state(cluster="ec2", containerInstances=[instance["containerInstanceArn"]],
                                     status="ACTIVE")
placed = ecs.run_task(cluster="ec2", taskDefinition="svc", launchType="EC2")
check(len(placed["tasks"]) == 1 and placed["tasks"][0]["containerInstanceArn"] == instance["containerInstanceArn"],
      "run_task places on the instance once it is ACTIVE again")
# Custom attributes: placement constraints match them; ListAttributes shows them.
ARN = instance["containerInstanceArn"]
stack = [{"name": "stack", "value": "prod", "targetId": ARN}]
prod_only = [{"type": "memberOf", "expression": "attribute:stack == prod"}]
refused = ecs.run_task(cluster="ec2", taskDefinition="svc", launchType="EC2", placementConstraints=prod_only)
check([f["reason"] for f in refused["failures"]] == ["ATTRIBUTE"], "run_task: no instance has attribute stack")
check(ecs.put_attributes(cluster="ec2", attributes=stack)["attributes"] == stack, "put_attributes")
placed = ecs.run_task(cluster="ec2", taskDefinition="svc", launchType="EC2", placementConstraints=prod_only)
check(len(placed["tasks"]) == 1, "run_task places by a custom attribute")
listed = ecs.list_attributes(cluster="ec2", targetType="container-instance", attributeName="stack")["attributes"]
check(listed == [{"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": ARN}],
      "list_attributes by name")
check(any(a["name"] == "ecs.os-type" for a in
          ecs.list_attributes(cluster="ec2", targetType="container-instance")["attributes"]),
      "list_attributes includes ECS's own attributes")
raises(ecs.exceptions.TargetNotFoundException,
       lambda: ecs.put_attributes(cluster="ec2", attributes=[{"name": "stack", "value": "prod",
                                                              "targetType": "container-instance",
                                                              "targetId": "0123456789abcdef0123456789abcdef"}]),
       "put_attributes on a missing instance")
raises(ecs.exceptions.AttributeLimitExceededException,
       lambda: ecs.put_attributes(cluster="ec2", attributes=[{"name": f"a{i}", "targetId": ARN} for i in range(10)]),
       "put_attributes past 10 custom attributes",
       "You can apply up to 10 custom attributes for each resource.")
ecs.delete_attributes(cluster="ec2", attributes=[{"name": "stack", "targetId": ARN}])
check(ecs.list_attributes(cluster="ec2", targetType="container-instance", attributeName="stack")["attributes"] == [],
      "delete_attributes")
raises(ecs.exceptions.InvalidParameterException,
       lambda: ecs.deregister_container_instance(cluster="ec2", containerInstance=ARN),
       "deregister_container_instance refuses an instance with tasks unless forced",
       "Found running tasks on the instance.")
raises(ecs.exceptions.ClusterContainsContainerInstancesException, lambda: ecs.delete_cluster(cluster="ec2"),
       "ClusterContainsContainerInstancesException",
       "The Cluster cannot be deleted while Container Instances are active.")

# The AWS CLI, unmodified.
def aws(*args):
    out = subprocess.run(["aws", "ecs", *args, "--endpoint-url", ENDPOINT, "--region", "us-east-1",
                          "--output", "json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else {}


aws("create-cluster", "--cluster-name", "cli")
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump({k: v for k, v in TASK_DEFINITION.items() if k != "tags"} | {"family": "cli-web"}, f)
aws("register-task-definition", "--cli-input-json", f"file://{f.name}")
out = aws("run-task", "--cluster", "cli", "--task-definition", "cli-web", "--count", "2",
          "--launch-type", "FARGATE", "--network-configuration",
          "awsvpcConfiguration={subnets=[subnet-1],assignPublicIp=DISABLED}")
check(len(out["tasks"]) == 2, "aws ecs run-task")
aws("register-task-definition", "--cli-input-json", f"file://{f.name}", "--family", "cli-old")
aws("deregister-task-definition", "--task-definition", "cli-old:1")
gone = aws("delete-task-definitions", "--task-definitions", "cli-old:1")
check([d["status"] for d in gone["taskDefinitions"]] == ["DELETE_IN_PROGRESS"], "aws ecs delete-task-definitions")
cli_arns = [t["taskArn"] for t in out["tasks"]]
subprocess.run(["aws", "ecs", "wait", "tasks-running", "--cluster", "cli", "--tasks", *cli_arns,
                "--endpoint-url", ENDPOINT, "--region", "us-east-1"], check=True)
check(True, "aws ecs wait tasks-running")
listed = aws("list-tasks", "--cluster", "cli")
check(sorted(listed["taskArns"]) == sorted(cli_arns), "aws ecs list-tasks")
missing = aws("describe-clusters", "--clusters", "cli", "ghost")
check([c["clusterName"] for c in missing["clusters"]] == ["cli"] and missing["failures"][0]["reason"] == "MISSING",
      "aws ecs describe-clusters with a MISSING failure")
bad = subprocess.run(["aws", "ecs", "run-task", "--cluster", "ghost", "--task-definition", "cli-web",
                      "--endpoint-url", ENDPOINT, "--region", "us-east-1"], capture_output=True, text=True)
check(bad.returncode != 0 and "ClusterNotFoundException" in bad.stderr, "aws ecs reports the ECS exception")
check("ClusterNotFoundException: ClusterNotFoundException" not in bad.stderr and "Cluster not found." in bad.stderr,
      "aws ecs prints the exception once, with ECS's message")

print(f"{checks} passed, 0 failed")
