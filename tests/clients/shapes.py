"""Checks every answer of a running `taskledger serve --aws-listen ...` against the ECS service
model that botocore ships: each member the server sends must be a member of the model's output
shape, of the model's JSON type (and one of its enum values), never null; errors carry `__type`,
`message` and only the members of their exception shape. boto3 itself ignores unknown members,
so this reads the raw JSON. Covers all 29 operations taskledger serves, with the optional parts
of each answer filled in (tags, attachments, network bindings, failures, …).

Usage: python3 tests/clients/shapes.py http://127.0.0.1:PORT
"""
import json
import sys
import urllib.error
import urllib.request

import botocore.session

ENDPOINT = sys.argv[1]
MODEL = botocore.session.get_session().get_service_model("ecs")
TARGET = MODEL.metadata["targetPrefix"]
covered = set()
problems = []


def walk(shape, value, path):
    """Appends to `problems` every way `value` does not fit `shape`."""
    kind = shape.type_name
    if value is None:
        problems.append(f"{path}: null (ECS leaves absent members out)")
    elif kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: {type(value).__name__}, the model has a structure")
            return
        for key, member in value.items():
            if key not in shape.members:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
            else:
                walk(shape.members[key], member, f"{path}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: {type(value).__name__}, the model has a list")
            return
        for i, item in enumerate(value):
            walk(shape.member, item, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: {type(value).__name__}, the model has a map")
            return
        for key, item in value.items():
            walk(shape.value, item, f"{path}[{key!r}]")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: {type(value).__name__}, the model has a string")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.name}'s values")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: {value!r}, the model has an integer")
    elif kind in ("double", "float", "timestamp"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: {value!r}, the model has a number ({kind})")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r}, the model has a boolean")


def call(operation, body, expect_error=None):
    """Calls `operation` with the JSON `body`, checks the answer's shape and returns it."""
    covered.add(operation)
    request = urllib.request.Request(
        ENDPOINT + "/", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{TARGET}.{operation}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        if expect_error:
            raise SystemExit(f"FAILED: {operation} should have failed with {expect_error}")
        walk(MODEL.operation_model(operation).output_shape, answer, operation)
    except urllib.error.HTTPError as error:
        answer = json.loads(error.read())
        name = answer.get("__type", "").rsplit("#", 1)[-1]
        if name != expect_error:
            raise SystemExit(f"FAILED: {operation} answered {name}: {answer.get('message')}")
        exception = MODEL.shape_for(name)
        extra = {k: v for k, v in answer.items() if k not in ("__type", "message")}
        walk(exception, extra, f"{operation} {name}")
        if not isinstance(answer.get("message"), str):
            problems.append(f"{operation} {name}: no message")
    print(f"ok - {operation}" + (f" ({expect_error})" if expect_error else ""))
    return answer


TAGS = [{"key": "team", "value": "shapes"}]
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"],
                                   "assignPublicIp": "ENABLED"}}

cluster = call("CreateCluster", {"clusterName": "shapes", "tags": TAGS,
                                 "settings": [{"name": "containerInsights", "value": "enabled"}]})
arn_prefix = cluster["cluster"]["clusterArn"].split(":cluster/")[0]
call("CreateCluster", {"clusterName": "shapes-empty"})
call("RegisterTaskDefinition", {
    "family": "shapes-web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
    "cpu": "256", "memory": "512", "tags": TAGS,
    "containerDefinitions": [{"name": "app", "image": "nginx:1.25", "essential": True,
                              "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
                              "environment": [{"name": "MODE", "value": "ci"}],
                              "healthCheck": {"command": ["CMD", "true"]},
                              "logConfiguration": {"logDriver": "awslogs",
                                                   "options": {"awslogs-group": "g"}}}]})
call("RegisterTaskDefinition", {
    "family": "shapes-ec2", "networkMode": "bridge", "requiresCompatibilities": ["EC2"],
    "containerDefinitions": [{"name": "db", "image": "postgres", "memory": 128,
                              "portMappings": [{"containerPort": 5432, "hostPort": 15432}]}]})
instance = call("RegisterContainerInstance", {
    "cluster": "shapes", "tags": TAGS,
    "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                       {"name": "MEMORY", "type": "INTEGER", "integerValue": 8192}],
    "attributes": [{"name": "rack", "value": "a"}]})["containerInstance"]
instance_arn = instance["containerInstanceArn"]

fargate = call("RunTask", {"cluster": "shapes", "taskDefinition": "shapes-web", "count": 2,
                           "launchType": "FARGATE", "networkConfiguration": NETWORK, "tags": TAGS,
                           "enableECSManagedTags": True, "startedBy": "ci", "group": "family:web",
                           "clientToken": "shapes-1",
                           "overrides": {"containerOverrides": [{"name": "app", "command": ["run"]}]}})
task = fargate["tasks"][0]
call("RunTask", {"cluster": "shapes", "taskDefinition": "shapes-web", "count": 1, "launchType": "FARGATE",
                 "networkConfiguration": NETWORK, "clientToken": "shapes-1"}, expect_error="ConflictException")
ec2 = call("RunTask", {"cluster": "shapes", "taskDefinition": "shapes-ec2", "count": 2, "launchType": "EC2"})
if not ec2["failures"]:
    problems.append("RunTask: a second task on one host port should have failed (RESOURCE:PORTS)")
started = call("StartTask", {"cluster": "shapes", "taskDefinition": "shapes-web",
                             "containerInstances": [instance_arn], "networkConfiguration": NETWORK})
call("SubmitTaskStateChange", {
    "cluster": "shapes", "task": task["taskArn"], "status": "RUNNING",
    "containers": [{"containerName": "app", "status": "RUNNING", "runtimeId": "r1",
                    "networkBindings": [{"bindIP": "10.0.0.1", "containerPort": 80, "hostPort": 80,
                                         "protocol": "tcp"}]}],
    "pullStartedAt": 1700000000, "pullStoppedAt": 1700000001})
call("SubmitContainerStateChange", {
    "cluster": "shapes", "task": fargate["tasks"][1]["taskArn"], "containerName": "app",
    "status": "RUNNING", "runtimeId": "r2",
    "networkBindings": [{"bindIP": "10.0.0.2", "containerPort": 80, "hostPort": 80, "protocol": "tcp"}]})
call("SubmitAttachmentStateChanges", {"cluster": "shapes", "attachments": [
    {"attachmentArn": f"{arn_prefix}:attachment/{task['attachments'][0]['id']}", "status": "ATTACHED"}]})
call("StopTask", {"cluster": "shapes", "task": started["tasks"][0]["taskArn"], "reason": "shapes"})

call("DescribeTasks", {"cluster": "shapes", "include": ["TAGS"],
                       "tasks": [t["taskArn"] for t in fargate["tasks"] + ec2["tasks"] + started["tasks"]]
                       + [task["taskArn"][:-32] + "0" * 32]})
call("DescribeTasks", {"cluster": "nowhere", "tasks": [task["taskArn"]]}, expect_error="ClusterNotFoundException")
call("ListTasks", {"cluster": "shapes", "maxResults": 1})
call("DescribeTaskDefinition", {"taskDefinition": "shapes-web", "include": ["TAGS"]})
call("DescribeTaskDefinition", {"taskDefinition": "ghost"}, expect_error="ClientException")
call("ListTaskDefinitions", {"familyPrefix": "shapes", "maxResults": 1})
call("ListTaskDefinitionFamilies", {"familyPrefix": "shapes"})
call("DescribeClusters", {"clusters": ["shapes", "ghost"],
                          "include": ["ATTACHMENTS", "CONFIGURATIONS", "SETTINGS", "STATISTICS", "TAGS"]})
call("ListClusters", {"maxResults": 1})
call("DescribeContainerInstances", {"cluster": "shapes", "include": ["TAGS", "CONTAINER_INSTANCE_HEALTH"],
                                    "containerInstances": [instance_arn, instance_arn[:-32] + "0" * 32]})
call("ListContainerInstances", {"cluster": "shapes", "status": "ACTIVE"})
call("PutAttributes", {"cluster": "shapes", "attributes": [{"name": "stack", "value": "prod",
                                                            "targetId": instance_arn}]})
call("ListAttributes", {"cluster": "shapes", "targetType": "container-instance", "maxResults": 2})
call("DeleteAttributes", {"cluster": "shapes", "attributes": [{"name": "stack", "targetId": instance_arn}]})
call("PutAttributes", {"cluster": "shapes", "attributes": [{"name": "stack", "targetType": "container-instance",
                                                            "targetId": "0" * 32}]},
     expect_error="TargetNotFoundException")
call("UpdateContainerInstancesState", {"cluster": "shapes", "containerInstances": [instance_arn, "0" * 32],
                                       "status": "DRAINING"})
call("TagResource", {"resourceArn": task["taskArn"], "tags": [{"key": "extra", "value": "1"}]})
call("ListTagsForResource", {"resourceArn": task["taskArn"]})
call("UntagResource", {"resourceArn": task["taskArn"], "tagKeys": ["extra"]})
call("DeregisterTaskDefinition", {"taskDefinition": "shapes-ec2:1"})
call("DeleteTaskDefinitions", {"taskDefinitions": ["shapes-ec2:1", "shapes-web:1", "shapes-web:9"]})
call("DeregisterContainerInstance", {"cluster": "shapes", "containerInstance": instance_arn, "force": True})
call("DeleteCluster", {"cluster": "shapes"}, expect_error="ClusterContainsTasksException")
call("DeleteCluster", {"cluster": "shapes-empty"})

served = {"RunTask", "StartTask", "StopTask", "DescribeTasks", "ListTasks", "SubmitTaskStateChange",
          "SubmitContainerStateChange", "SubmitAttachmentStateChanges", "RegisterTaskDefinition",
          "DescribeTaskDefinition", "DeregisterTaskDefinition", "DeleteTaskDefinitions", "ListTaskDefinitions",
          "ListTaskDefinitionFamilies", "CreateCluster", "DescribeClusters", "ListClusters", "DeleteCluster",
          "RegisterContainerInstance", "DeregisterContainerInstance", "DescribeContainerInstances",
          "ListContainerInstances", "UpdateContainerInstancesState", "PutAttributes", "DeleteAttributes",
          "ListAttributes", "TagResource", "UntagResource", "ListTagsForResource"}
if served - covered:
    problems.append(f"not called: {sorted(served - covered)}")
if problems:
    print("\n".join(f"FAILED: {p}" for p in problems))
    raise SystemExit(f"{len(problems)} answers do not fit the ECS model")
print(f"{len(covered)} operations, every answer fits the ECS model")
