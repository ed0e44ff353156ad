#!/usr/bin/env bash
# Starts a 3-member etcd cluster on loopback and two taskledger servers whose log lives on it,
# to try several servers on one store; Ctrl-C stops them all. Needs Debian's etcd-server (etcd
# on PATH) and protoc for the build (protobuf-compiler). Everything lives in a temp directory.
#
#   tools/etcd-cluster.sh    # gRPC on 127.0.0.1:50061 and :50062, AWS JSON on :4571 and :4572
#   TASKLEDGER_BIN=target/debug/taskledger tools/etcd-cluster.sh    # a binary already built
set -euo pipefail
cd "$(dirname "$0")/.."
command -v etcd >/dev/null || { echo "etcd is required (Debian: apt-get install etcd-server)"; exit 1; }
bin=${TASKLEDGER_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --features etcd --bin taskledger
  bin=target/release/taskledger
fi
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; echo "stopped; data left in $work"' EXIT INT TERM

cluster="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
for n in 1 2 3; do
  etcd --name "e$n" --data-dir "$work/etcd$n" \
    --listen-client-urls "http://127.0.0.1:2379$n" --advertise-client-urls "http://127.0.0.1:2379$n" \
    --listen-peer-urls "http://127.0.0.1:2380$n" --initial-advertise-peer-urls "http://127.0.0.1:2380$n" \
    --initial-cluster "$cluster" --initial-cluster-state new --quota-backend-bytes 8589934592 \
    >"$work/etcd$n.log" 2>&1 &
  pids+=($!)
done
endpoints="http://127.0.0.1:23791,http://127.0.0.1:23792,http://127.0.0.1:23793"
for n in 1 2; do
  "$bin" serve --engine etcd --etcd-endpoints "$endpoints" \
    --data-dir "$work/node$n" --listen "127.0.0.1:5006$n" --aws-listen "127.0.0.1:457$n" \
    >"$work/node$n.log" 2>&1 &
  pids+=($!)
done
echo "etcd members: $endpoints (logs in $work)"
echo "taskledger: gRPC 127.0.0.1:50061 and 127.0.0.1:50062; AWS JSON http://127.0.0.1:4571 and :4572"
echo "try: aws ecs create-cluster --cluster-name demo --endpoint-url http://127.0.0.1:4571 --region us-east-1"
echo "     aws ecs list-clusters --endpoint-url http://127.0.0.1:4572 --region us-east-1"
wait
