# benches/compare: the AWS-API side of `benches/compare.sh`. One boto3 client code path, pointed at
# any ECS endpoint on 127.0.0.1 (moto_server or `taskledger serve --aws-listen`): creates a
# cluster, registers a Fargate task definition, then measures RunTask count=10 (tasks/s) and
# DescribeTasks with 100 ids (calls/s, p50/p99), one call in flight. Prints one JSON line per
# measure on stdout.
import argparse
import json
import random
import sys
import time
import uuid

import boto3
from botocore.config import Config


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def measure(name, seconds, call):
    """Calls `call()` back to back for `seconds`; returns (calls, items, elapsed, latencies_us, errors)."""
    latencies, items, errors, first_error = [], 0, 0, None
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        sent = time.perf_counter()
        try:
            items += call()
        except Exception as error:  # counted and reported, never hidden
            errors += 1
            first_error = first_error or f"{type(error).__name__}: {error}"
            continue
        latencies.append((time.perf_counter() - sent) * 1e6)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "measure": name,
        "calls": len(latencies),
        "items": items,
        "errors": errors,
        "first_error": first_error,
        "seconds": elapsed,
        "calls_per_sec": len(latencies) / elapsed,
        "items_per_sec": items / elapsed,
        "p50_us": percentile(latencies, 0.50),
        "p99_us": percentile(latencies, 0.99),
        "max_us": latencies[-1] if latencies else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--system", required=True, help="label for the output (moto, taskledger)")
    parser.add_argument("--secs", type=float, default=6.0, help="length of each measure")
    parser.add_argument(
        "--ec2-subnet",
        action="store_true",
        help="create the VPC and subnet through the endpoint's EC2 API first (moto checks subnet ids)",
    )
    args = parser.parse_args()
    if not args.endpoint.startswith("http://127.0.0.1:"):
        sys.exit("--endpoint must be http://127.0.0.1:PORT")

    ecs = boto3.client(
        "ecs",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60),
    )
    subnet = "subnet-12345678"
    if args.ec2_subnet:  # untimed setup; the ECS calls below are the same for every endpoint
        ec2 = boto3.client(
            "ec2",
            endpoint_url=args.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # moto 5 names the task's ENI only in a VPC with DNS host names (else RunTask fails).
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20")["Subnet"]["SubnetId"]
    cluster = "compare-" + uuid.uuid4().hex[:8]
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family="compare-web",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        # Container-level cpu/memory: moto 5 adds them up and fails without them.
        containerDefinitions=[{"name": "app", "image": "nginx:1.25", "essential": True, "cpu": 256, "memory": 512}],
    )
    arns = []

    def run_task():
        answer = ecs.run_task(
            cluster=cluster,
            taskDefinition="compare-web",
            count=10,
            launchType="FARGATE",
            # securityGroups too: moto 5 reads it unconditionally.
            networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": ["sg-12345678"]}},
        )
        if answer.get("failures"):
            raise RuntimeError(f"RunTask failures: {answer['failures'][:1]}")
        tasks = answer["tasks"]
        arns.extend(task["taskArn"] for task in tasks)
        return len(tasks)

    result = measure("run_task", args.secs, run_task)
    result.update(system=args.system, scenario="aws_run_task", tasks_in_store=len(arns))
    print(json.dumps(result), flush=True)

    if len(arns) < 100:
        sys.exit(f"{args.system}: only {len(arns)} tasks were created, DescribeTasks needs 100")
    rng = random.Random(7)

    def describe():
        answer = ecs.describe_tasks(cluster=cluster, tasks=rng.sample(arns, 100))
        if answer.get("failures") or len(answer["tasks"]) != 100:
            raise RuntimeError(f"DescribeTasks described {len(answer['tasks'])} of 100")
        return 100

    result = measure("describe_tasks", args.secs, describe)
    result.update(system=args.system, scenario="aws_describe", tasks_in_store=len(arns))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
