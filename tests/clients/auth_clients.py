"""boto3 and the AWS CLI against a running `taskledger serve --aws-listen ... --tls-cert ...
--auth-file ...`: each signs with SigV4 using a caller's access key, over TLS whose certificate is
checked against its CA (`verify=` / `--ca-bundle`). The operator's key is served; the same key
with a wrong secret is refused with InvalidSignatureException, an unknown key with
UnrecognizedClientException, and the agent's key may not delete a cluster (AccessDeniedException).

Usage: python3 tests/clients/auth_clients.py https://127.0.0.1:PORT CA_PEM
(with the keys of tests/clients/auth_clients.toml; `aws` on PATH)
"""
import json
import os
import subprocess
import sys

import boto3
import botocore.config
import botocore.exceptions

endpoint, ca = sys.argv[1:3]
once = botocore.config.Config(retries={"max_attempts": 1})


def client(key, secret):
    return boto3.client("ecs", region_name="us-east-1", endpoint_url=endpoint, verify=ca, config=once,
                        aws_access_key_id=key, aws_secret_access_key=secret)


def refused(call, expected):
    try:
        call()
    except botocore.exceptions.ClientError as error:
        code = error.response["Error"]["Code"]
        assert code == expected, f"{code} instead of {expected}: {error}"
        return error.response["Error"]["Message"]
    raise SystemExit(f"served, though {expected} was expected")


operator = client("AKIACIOPERATOR", "ci-operator-secret")
assert operator.create_cluster(clusterName="signed-by-boto3")["cluster"]["clusterName"] == "signed-by-boto3"
assert any(arn.endswith("/signed-by-boto3") for arn in operator.list_clusters()["clusterArns"])

refused(lambda: client("AKIACIOPERATOR", "a-wrong-secret").list_clusters(), "InvalidSignatureException")
refused(lambda: client("AKIANOBODY", "whatever").list_clusters(), "UnrecognizedClientException")
message = refused(lambda: client("AKIACIAGENT", "ci-agent-secret").delete_cluster(cluster="signed-by-boto3"),
                  "AccessDeniedException")
assert "ecs:DeleteCluster" in message, message
print("boto3 with SigV4 over TLS: the operator's key served; a wrong secret, an unknown key and an agent's DeleteCluster refused")


def aws(key, secret, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
               AWS_MAX_ATTEMPTS="1")
    return subprocess.run(["aws", "ecs", *args, "--endpoint-url", endpoint, "--ca-bundle", ca, "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=60)


listed = aws("AKIACIOPERATOR", "ci-operator-secret", "list-clusters")
assert listed.returncode == 0, listed.stderr
assert any(arn.endswith("/signed-by-boto3") for arn in json.loads(listed.stdout)["clusterArns"]), listed.stdout
wrong = aws("AKIACIOPERATOR", "a-wrong-secret", "list-clusters")
assert wrong.returncode != 0 and "InvalidSignatureException" in wrong.stderr, wrong.stderr
print("the AWS CLI with SigV4 over TLS (--ca-bundle): served with the secret, refused with a wrong one")
