#!/usr/bin/env bash
# benches/compare.sh: same-run comparison of taskledger against etcd, PostgreSQL and moto (issue:
# "compare with etcd/PostgreSQL/moto"). Installs what it needs (Debian etcd-server, etcd-client,
# postgresql; moto[server] + boto3 in a venv under a temp dir), builds taskledger and
# benches/compare in release, starts every server on 127.0.0.1 in a temp dir, alternates the
# systems within each round, prints every figure, then each system's median [min–max] and the
# ratios taskledger ÷ etcd / PostgreSQL / moto, and of taskledger with its log on that etcd ÷ etcd's
# own transactions and ÷ taskledger on sled. Stops what it started and removes its temp dir on
# exit (trap). Needs root (apt-get, and PostgreSQL runs as the `postgres` user).
#
# Usage: bash benches/compare.sh
# Options (environment):
#   COMPARE_SECS=6             length of each measurement, seconds
#   COMPARE_ROUNDS=3           rounds; every round measures every system once per parameter
#   COMPARE_IN_FLIGHT=1,16,64,256   in-flight counts for the durable transitions
#   COMPARE_DESCRIBE_TASKS=100000   tasks in the store for DescribeTasks(100) (both systems)
#   COMPARE_PG_BIG_ROWS=1000000     rows of PostgreSQL's extra describe table (0 = skip it)
#   COMPARE_DESCRIBE_IN_FLIGHT=1,16 in-flight counts for DescribeTasks(100)
#   COMPARE_MOTO_VERSION=5.2.5  COMPARE_BOTO3_VERSION=1.44.5   pinned PyPI versions
#   COMPARE_SKIP_INSTALL=1      skip apt-get (use the etcd and PostgreSQL installed); the venv is always new
#   COMPARE_OUT_DIR=/tmp        where the raw results (JSON lines) and the summary are kept
#   COMPARE_KEEP=1              keep the temp dir (server logs, data dirs) after the run
set -euo pipefail

SECS=${COMPARE_SECS:-6}
ROUNDS=${COMPARE_ROUNDS:-3}
IN_FLIGHT=${COMPARE_IN_FLIGHT:-1,16,64,256}
DESCRIBE_TASKS=${COMPARE_DESCRIBE_TASKS:-100000}
DESCRIBE_IN_FLIGHT=${COMPARE_DESCRIBE_IN_FLIGHT:-1,16}
PG_BIG_ROWS=${COMPARE_PG_BIG_ROWS:-1000000}
MOTO_VERSION=${COMPARE_MOTO_VERSION:-5.2.5}
BOTO3_VERSION=${COMPARE_BOTO3_VERSION:-1.44.5}
OUT_DIR=${COMPARE_OUT_DIR:-/tmp}
mkdir -p "$OUT_DIR"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/benches/compare
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$OUT_DIR/taskledger-compare-$STAMP.jsonl
SUMMARY=$OUT_DIR/taskledger-compare-$STAMP.md
WORK=$(mktemp -d /tmp/taskledger-compare.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PGDATA=""
PGBIN=""

log() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
    local status=$?
    set +e
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    if [[ -n $PGDATA && -f $PGDATA/postmaster.pid ]]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
    fi
    if [[ ${COMPARE_KEEP:-0} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 60 s for a TCP port on 127.0.0.1 to accept connections.
wait_port() {
    local port=$1 what=$2
    for _ in $(seq 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "$what did not open 127.0.0.1:$port"
    return 1
}

# Splits "1,16,64" into words.
list() { tr ',' ' ' <<<"$1"; }

# ---------------------------------------------------------------------------------------------
# Install and build
if [[ ${COMPARE_SKIP_INSTALL:-0} != 1 ]]; then
    if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null || ! command -v protoc >/dev/null \
        || ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1; then
        log "apt-get install etcd-server etcd-client protobuf-compiler postgresql"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server etcd-client protobuf-compiler postgresql >/dev/null
    fi
fi
# The Debian packages may start their own services; ours run on their own ports and data dirs.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
VENV=$WORK/venv
log "venv with moto[server]==$MOTO_VERSION boto3==$BOTO3_VERSION"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" "boto3==$BOTO3_VERSION"

log "cargo build --release (taskledger, taskledger-load, benches/compare)"
(cd "$ROOT" && cargo build --release -q --features etcd --bin taskledger --bin taskledger-load)
cargo build --release -q --manifest-path "$HERE/Cargo.toml"
TL=$ROOT/target/release/taskledger
TL_LOAD=$ROOT/target/release/taskledger-load
ETCD_LOAD=$HERE/target/release/etcd-txn-load

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "nproc: $(nproc); kernel: $(uname -r); memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "disk of $WORK: $(findmnt -n -o SOURCE,FSTYPE -T "$WORK" | tr -s ' ')"
    echo "etcd: $(etcd --version | head -n 1)"
    echo "postgresql: $("$PGBIN/postgres" --version)"
    echo "moto: $("$VENV/bin/python" -c 'import moto; print(moto.__version__)'); boto3: $("$VENV/bin/python" -c 'import boto3; print(boto3.__version__)')"
    echo "settings: COMPARE_SECS=$SECS COMPARE_ROUNDS=$ROUNDS COMPARE_IN_FLIGHT=$IN_FLIGHT COMPARE_DESCRIBE_TASKS=$DESCRIBE_TASKS COMPARE_DESCRIBE_IN_FLIGHT=$DESCRIBE_IN_FLIGHT COMPARE_PG_BIG_ROWS=$PG_BIG_ROWS"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$SUMMARY.head" >&2

# ---------------------------------------------------------------------------------------------
# etcd: one member, default durability (fsync of its WAL on every commit), data dir on this disk.
ETCD_PORT=$(free_port)
ETCD_PEER=$(free_port)
etcd --name compare --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "compare=http://127.0.0.1:$ETCD_PEER" >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
wait_port "$ETCD_PORT" etcd

# PostgreSQL: a fresh cluster under $WORK, run as `postgres` (it refuses root), default
# durability (fsync=on, synchronous_commit=on, full_page_writes=on); only max_connections raised
# to take 256 clients.
PG_PORT=$(free_port)
mkdir -p "$WORK/pg/sock" "$WORK/pglog"
chown -R postgres:postgres "$WORK/pg" "$WORK/pglog"
PGDATA=$WORK/pg/data
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust >"$WORK/initdb.log" 2>&1
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -w -l "$WORK/pg/server.log" \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK/pg/sock -c max_connections=300" \
    start >/dev/null
psql_() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
log "PostgreSQL on 127.0.0.1:$PG_PORT: loading 100,000 tasks$([[ $PG_BIG_ROWS -gt 0 ]] && echo " and a $PG_BIG_ROWS-row describe table")"
psql_ <<SQL
CREATE TABLE tasks (id bigint PRIMARY KEY, version bigint NOT NULL, status text NOT NULL, payload text NOT NULL);
CREATE TABLE events (seq bigserial PRIMARY KEY, task_id bigint NOT NULL, version bigint NOT NULL,
                     status text NOT NULL, payload text NOT NULL);
INSERT INTO tasks SELECT g, 1, 'PROVISIONING', rpad(md5(g::text), 300, md5((g + 1)::text))
  FROM generate_series(1, 100000) g;
CREATE TABLE tasks_big (id bigint PRIMARY KEY, version bigint NOT NULL, status text NOT NULL, payload text NOT NULL);
INSERT INTO tasks_big SELECT g, 1, 'RUNNING', rpad(md5(g::text), 300, md5((g + 1)::text))
  FROM generate_series(1, $PG_BIG_ROWS) g;
VACUUM ANALYZE;
CHECKPOINT;
SQL

echo "postgresql settings: $(psql_ -At -c "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers', 'max_connections')")" | tee -a "$SUMMARY.head" >&2

# The transition as ONE statement. pgbench cannot carry the version a client last saw, so the
# version compared is read in the same statement (an initplan, taken from the statement's
# snapshot): if another client moved the row in between, the UPDATE's recheck of
# `version = <that value>` fails on the new row, nothing is updated and no event is inserted,
# as a failed etcd compare. Only statements that inserted an event count as transitions.
cat >"$WORK/transition.sql" <<'SQL'
\set id random(1, 100000)
WITH moved AS (UPDATE tasks SET version = version + 1, status = (ARRAY['PENDING','ACTIVATING','RUNNING','DEACTIVATING','STOPPING','DEPROVISIONING','STOPPED'])[version % 7 + 1] WHERE id = :id AND version = (SELECT version FROM tasks WHERE id = :id) RETURNING id, version, status) INSERT INTO events (task_id, version, status, payload) SELECT id, version, status, rpad(id::text || '/' || version::text || '/' || status, 300, '.') FROM moved;
SQL
# DescribeTasks(100): 100 random ids chosen by the client, sent as one array parameter.
describe_script() {
    local table=$1 rows=$2 file=$3
    {
        for i in $(seq 100); do echo "\\set i$i random(1, $rows)"; done
        printf 'SELECT id, version, status, payload FROM %s WHERE id = ANY(ARRAY[' "$table"
        for i in $(seq 100); do printf ':i%s%s' "$i" "$([[ $i -lt 100 ]] && echo ,)"; done
        echo ']::bigint[]);'
    } >"$file"
}
describe_script tasks 100000 "$WORK/describe.sql"
[[ $PG_BIG_ROWS -gt 0 ]] && describe_script tasks_big "$PG_BIG_ROWS" "$WORK/describe_big.sql"
chmod 644 "$WORK"/*.sql

# pgbench as the postgres user; $1 system label, $2 scenario, $3 script, $4 clients, $5 round.
pgbench_run() {
    local system=$1 scenario=$2 script=$3 clients=$4 round=$5
    local threads=$((clients < 2 ? clients : 2))
    local prefix=$WORK/pglog/$system-$scenario-$clients-$round
    local before after applied=""
    if [[ $scenario == transitions ]]; then
        before=$(psql_ -At -c "SELECT count(*) FROM events")
    fi
    runuser -u postgres -- "$PGBIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -M prepared -n \
        -f "$script" -c "$clients" -j "$threads" -T "$SECS" -l --log-prefix="$prefix-lat" postgres \
        >"$prefix.out" 2>"$prefix.err" || { cat "$prefix.err" >&2; return 1; }
    if [[ $scenario == transitions ]]; then
        after=$(psql_ -At -c "SELECT count(*) FROM events")
        applied=$((after - before))
    fi
    python3 "$HERE/compare.py" postgres "$RESULTS" "$system" "$prefix.out" "$prefix-lat." "$scenario" "$clients" "$round" $applied
}

# AWS JSON endpoints: a fresh moto_server and a fresh `taskledger serve --aws-listen` per round.
aws_round() {
    local round=$1 moto_port tl_port tl_grpc
    moto_port=$(free_port)
    tl_port=$(free_port)
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$WORK/moto-$round.log" 2>&1 &
    local moto_pid=$!
    PIDS+=("$moto_pid")
    "$TL" serve --listen 127.0.0.1:0 --aws-listen "127.0.0.1:$tl_port" --data-dir "$WORK/tl-aws-$round" \
        >"$WORK/tl-aws-$round.log" 2>&1 &
    local tl_pid=$!
    PIDS+=("$tl_pid")
    wait_port "$moto_port" moto_server
    wait_port "$tl_port" "taskledger serve --aws-listen"
    "$VENV/bin/python" "$HERE/ecs_api.py" --endpoint "http://127.0.0.1:$tl_port" --system taskledger \
        --secs "$SECS" >"$WORK/aws-tl-$round.json"
    python3 "$HERE/compare.py" aws "$RESULTS" "$WORK/aws-tl-$round.json" "$round"
    "$VENV/bin/python" "$HERE/ecs_api.py" --endpoint "http://127.0.0.1:$moto_port" --system moto \
        --secs "$SECS" --ec2-subnet >"$WORK/aws-moto-$round.json"
    python3 "$HERE/compare.py" aws "$RESULTS" "$WORK/aws-moto-$round.json" "$round"
    kill "$moto_pid" "$tl_pid"
    wait "$moto_pid" "$tl_pid" 2>/dev/null || true
    rm -rf "$WORK/tl-aws-$round"
}

# taskledger with its log on the same etcd (`serve --engine etcd`, a prefix of its own per
# measurement), driven by the same load generator over gRPC.
taskledger_on_etcd() {
    local n=$1 round=$2 port
    port=$(free_port)
    "$TL" serve --engine etcd --etcd-endpoints "http://127.0.0.1:$ETCD_PORT" --etcd-prefix "/compare-$round-$n" \
        --data-dir "$WORK/tl-etcd-$round-$n" --listen "127.0.0.1:$port" >"$WORK/tl-etcd-$round-$n.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$port" "taskledger serve --engine etcd"
    "$TL_LOAD" --endpoint "http://127.0.0.1:$port" --json transitions --in-flight "$n" --duration-secs "$SECS" \
        --max-requests $((SECS * 25000)) >"$WORK/tl-etcd-$n-$round.json" 2>"$WORK/tl-etcd-$n-$round.err"
    python3 "$HERE/compare.py" taskledger "$RESULTS" "$WORK/tl-etcd-$n-$round.json" transitions "$round" \
        transitions_per_sec taskledger-etcd
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$WORK/tl-etcd-$round-$n"
}

# ---------------------------------------------------------------------------------------------
# Rounds: within each, every parameter is measured on every system back to back.
: >"$RESULTS"
STARTED=$SECONDS
for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS: durable transitions ($IN_FLIGHT in flight)"
    for n in $(list "$IN_FLIGHT"); do
        TMPDIR=$WORK "$TL_LOAD" --json transitions --in-flight "$n" --duration-secs "$SECS" \
            --max-requests $((SECS * 25000)) >"$WORK/tl-transitions-$n-$round.json" 2>"$WORK/tl-transitions-$n-$round.err"
        python3 "$HERE/compare.py" taskledger "$RESULTS" "$WORK/tl-transitions-$n-$round.json" transitions "$round" transitions_per_sec
        "$ETCD_LOAD" --endpoint "http://127.0.0.1:$ETCD_PORT" --json --in-flight "$n" --duration-secs "$SECS" \
            --keys 4096 >"$WORK/etcd-$n-$round.json"
        python3 "$HERE/compare.py" etcd "$RESULTS" "$WORK/etcd-$n-$round.json" "$round"
        taskledger_on_etcd "$n" "$round"
        pgbench_run postgresql transitions "$WORK/transition.sql" "$n" "$round"
    done
    log "round $round: DescribeTasks(100) with $DESCRIBE_TASKS tasks ($DESCRIBE_IN_FLIGHT in flight)"
    TMPDIR=$WORK "$TL_LOAD" --json describe --tasks "$DESCRIBE_TASKS" --in-flight "$DESCRIBE_IN_FLIGHT" \
        --duration-secs "$SECS" >"$WORK/tl-describe-$round.json" 2>"$WORK/tl-describe-$round.err"
    python3 "$HERE/compare.py" taskledger "$RESULTS" "$WORK/tl-describe-$round.json" describe "$round" calls_per_sec
    for n in $(list "$DESCRIBE_IN_FLIGHT"); do
        pgbench_run postgresql describe "$WORK/describe.sql" "$n" "$round"
        if [[ $PG_BIG_ROWS -gt 0 ]]; then
            pgbench_run postgresql-1M describe "$WORK/describe_big.sql" "$n" "$round"
        fi
    done
    log "round $round: RunTask count=10 and DescribeTasks(100) over AWS JSON 1.1 (taskledger, moto)"
    aws_round "$round"
done
log "measured in $((SECONDS - STARTED)) s"

{
    cat "$SUMMARY.head"
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    python3 "$HERE/compare.py" summary "$RESULTS"
} >"$SUMMARY"
rm -f "$SUMMARY.head"
cat "$SUMMARY"
log "raw results: $RESULTS; summary: $SUMMARY"
