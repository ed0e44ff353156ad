"""Reads a running `taskledger serve --metrics-listen ...` with Prometheus's own Python client
parser, after the other clients have run against it: the text must parse, every taskledger
metric must carry help text and a type, the requests the clients made must be counted under
both front ends with ok and refused outcomes, and /healthz and /readyz must answer 200.

Usage: python3 tests/clients/metrics.py http://127.0.0.1:PORT
"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BASE = sys.argv[1].rstrip("/")


def get(path):
    with urllib.request.urlopen(BASE + path, timeout=30) as response:
        return response.status, response.read().decode()


status, text = get("/metrics")
assert status == 200, status
families = {family.name: family for family in text_string_to_metric_families(text)}
ours = {name: f for name, f in families.items() if name.startswith("taskledger_")}
assert ours, "no taskledger metrics"
for name, family in ours.items():
    assert family.documentation, f"{name} has no help text"
    assert family.type in ("counter", "gauge", "histogram"), f"{name} is a {family.type}"

requests = families["taskledger_requests"]  # the client drops `_total` from counter names
by = {}
for sample in requests.samples:
    if sample.name.endswith("_total"):
        key = (sample.labels["frontend"], sample.labels["outcome"] == "ok")
        by[key] = by.get(key, 0) + sample.value
for frontend in ("grpc", "aws"):
    assert by.get((frontend, True), 0) > 0, f"no successful {frontend} request counted: {by}"
    assert by.get((frontend, False), 0) > 0, f"no refused {frontend} request counted: {by}"
events = sum(s.value for s in families["taskledger_log_events"].samples if s.name.endswith("_total"))
head = families["taskledger_log_head_seq"].samples[0].value
assert events > 0 and events <= head, (events, head)
assert families["process_resident_memory_bytes"].samples[0].value > 0
for path in ("/healthz", "/readyz"):
    status, body = get(path)
    assert status == 200, (path, status, body)
print(f"{len(ours)} taskledger metric families parse; requests counted by front end: {by}; "
      f"{int(events)} events, head {int(head)}")
