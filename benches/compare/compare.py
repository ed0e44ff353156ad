# benches/compare: the bookkeeping of `benches/compare.sh`. Turns each tool's output (taskledger-load
# JSON, etcd-txn-load JSON, pgbench's summary and per-transaction logs, ecs_api.py JSON) into one
# normalized JSON line per measurement, and prints the summary tables: each system's median
# [min–max] over the rounds and the ratios taskledger ÷ other system. Standard library only.
import glob
import json
import re
import statistics
import sys


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def emit(out, scenario, param, system, round_, rate, p50, p99, **extra):
    record = {"scenario": scenario, "param": param, "system": system, "round": int(round_),
              "rate": rate, "p50_us": p50, "p99_us": p99, "loadavg_after": loadavg()}
    record.update(extra)
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"  {scenario:<24} {str(param):>8} {system:<12} round {round_}: {rate:>10.1f}/s  "
          f"p50 {fmt_us(p50)}  p99 {fmt_us(p99)}", flush=True)


def fmt_us(value):
    return "-" if value is None else f"{value / 1000:.2f} ms"


def taskledger(out, path, scenario, round_, rate_key, system="taskledger"):
    """taskledger-load --json: one object per scenario, one result per in-flight count."""
    with open(path) as f:
        report = json.loads(f.read().strip().splitlines()[-1])
    for result in report["results"]:
        if result.get("errors"):
            print(f"  {system} {scenario}: {result['errors']} errors, first: {result.get('first_error')}")
        emit(out, scenario, result["in_flight"], system, round_, result[rate_key], result["p50_us"],
             result["p99_us"], errors=result.get("errors"), events_per_fdatasync=result.get("events_per_fdatasync"))


def etcd(out, path, round_):
    with open(path) as f:
        for line in f:
            result = json.loads(line)
            emit(out, "transitions", result["in_flight"], "etcd", round_, result["transitions_per_sec"],
                 result["p50_us"], result["p99_us"], errors=result["errors"], conflicts=result["conflicts"])


def pgbench_latencies(prefix):
    """pgbench -l: one line per transaction, the third field is its latency in microseconds."""
    latencies = []
    for path in glob.glob(prefix + "*"):
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3:
                    latencies.append(int(fields[2]))
    latencies.sort()
    if not latencies:
        return None, None

    def q(fraction):
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))]

    return q(0.50), q(0.99)


def postgres(out, system, summary_path, log_prefix, scenario, param, round_, applied=None):
    """pgbench's summary gives tps; for transitions `applied` (events inserted) / transactions run
    scales it to the transitions that passed the version check."""
    text = open(summary_path).read()
    tps = float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text).group(1))
    processed = int(re.search(r"number of transactions actually processed: (\d+)", text).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", text)
    p50, p99 = pgbench_latencies(log_prefix)
    extra = {"transactions": processed, "failed": int(failed.group(1)) if failed else 0}
    rate = tps
    if applied is not None:
        extra["applied"] = int(applied)
        rate = tps * int(applied) / processed if processed else 0.0
    emit(out, scenario, int(param), system, round_, rate, p50, p99, **extra)


def aws(out, path, round_):
    with open(path) as f:
        for line in f:
            result = json.loads(line)
            rate = result["items_per_sec"] if result["scenario"] == "aws_run_task" else result["calls_per_sec"]
            if result["errors"]:
                print(f"  {result['system']} {result['scenario']}: {result['errors']} errors, "
                      f"first: {result['first_error']}")
            emit(out, result["scenario"], 1, result["system"], round_, rate, result["p50_us"], result["p99_us"],
                 errors=result["errors"], tasks_in_store=result["tasks_in_store"])


def spread(values, digits=0):
    values = sorted(values)
    def f(v):
        return f"{v:,.{digits}f}"
    return f"{f(statistics.median(values))} [{f(values[0])}–{f(values[-1])}]"


def summary(path):
    records = [json.loads(line) for line in open(path) if line.strip()]
    scenarios = [
        ("transitions", "Durable versioned transitions (transitions/s, higher is better)",
         ["taskledger", "etcd", "postgresql"]),
        ("transitions", "The same with taskledger's log on that etcd (`serve --engine etcd`; transitions/s)",
         ["taskledger-etcd", "etcd", "taskledger"]),
        ("describe", "DescribeTasks(100) / SELECT … WHERE id = ANY(100 ids) (calls/s)",
         ["taskledger", "postgresql", "postgresql-1M"]),
        ("aws_run_task", "RunTask count=10 over AWS JSON 1.1, boto3, 1 in flight (tasks/s)",
         ["taskledger", "moto"]),
        ("aws_describe", "DescribeTasks(100) over AWS JSON 1.1, boto3, 1 in flight (calls/s)",
         ["taskledger", "moto"]),
    ]
    loads = [r["loadavg_after"] for r in records]
    rounds = max((r["round"] for r in records), default=0)
    print(f"{len(records)} measurements, {rounds} round(s); 1-min load average after each: "
          f"{min(loads, default=0):.2f}–{max(loads, default=0):.2f}\n")
    for scenario, title, systems in scenarios:
        rows = [r for r in records if r["scenario"] == scenario]
        mine_, others = systems[0], systems[1:]
        if not any(r["system"] == mine_ for r in rows):
            continue
        print(f"### {title}\n")
        head = "| param | " + " | ".join(f"{s} rate | {s} p50 ms | {s} p99 ms" for s in systems)
        head += " | " + " | ".join(f"{mine_} ÷ {s}" for s in others) + " |"
        print(head)
        print("|" + "---:|" * (1 + 3 * len(systems) + len(others)))
        for param in sorted({r["param"] for r in rows}):
            cells, medians = [str(param)], {}
            for system in systems:
                mine = [r for r in rows if r["param"] == param and r["system"] == system]
                if not mine:
                    cells += ["—", "—", "—"]
                    continue
                medians[system] = statistics.median(r["rate"] for r in mine)
                cells.append(spread([r["rate"] for r in mine], 1 if medians[system] < 100 else 0))
                for key in ("p50_us", "p99_us"):
                    values = [r[key] / 1000 for r in mine if r[key] is not None]
                    cells.append(spread(values, 2) if values else "—")
            for other in others:
                if mine_ in medians and medians.get(other):
                    cells.append(f"**{medians[mine_] / medians[other]:.2f}×**")
                else:
                    cells.append("—")
            print("| " + " | ".join(cells) + " |")
        print()


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "taskledger":
        taskledger(*args)
    elif command == "etcd":
        etcd(*args)
    elif command == "postgres":
        postgres(*args)
    elif command == "aws":
        aws(*args)
    elif command == "summary":
        summary(*args)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
