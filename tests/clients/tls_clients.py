"""boto3 against a running `taskledger serve --aws-listen ... --tls-cert ... --tls-client-ca ...`:
served with a client certificate from the client CA (botocore's `client_cert`), refused at the
handshake without one; the server's certificate is checked against its CA (`verify=`).

Usage: python3 tests/clients/tls_clients.py https://127.0.0.1:PORT CA_PEM CLIENT_PEM CLIENT_KEY
"""
import sys

import boto3
import botocore.config

endpoint, ca, cert, key = sys.argv[1:5]
common = dict(region_name="us-east-1", endpoint_url=endpoint, verify=ca,
              aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
with_cert = boto3.client("ecs", config=botocore.config.Config(client_cert=(cert, key)), **common)
created = with_cert.create_cluster(clusterName="over-mutual-tls")["cluster"]["clusterName"]
assert created == "over-mutual-tls", created
assert "over-mutual-tls" in " ".join(with_cert.list_clusters()["clusterArns"])

without = boto3.client("ecs", config=botocore.config.Config(retries={"max_attempts": 1}), **common)
try:
    without.list_clusters()
    raise SystemExit("served without a client certificate")
except botocore.exceptions.SSLError:
    pass
print("boto3 over mutual TLS: served with a client certificate, refused without one")
