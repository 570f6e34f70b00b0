"""Benchmark: `secretsight scan` and `secretsight normalize` on generated Vault audit logs,
against the orjson floor and the reference design's bulk-read detector, all on the same file.

    .venv/bin/python benchmarks/bench_scan.py                        # 100k, 300k and 1M events
    .venv/bin/python benchmarks/bench_scan.py --events 300000 --repeat 3 --reference-budget 300

Events vs lines: an event is one audited Vault operation. The file audit device logs it twice
(a request entry, then a response entry), so N events are 2N lines; `scan` keeps the response
entry (the request entry is skipped) and reports N events. The workload: 400 application tokens
(`--tokens`) re-reading their secrets from 10.0.0.0/16 over ~21 hours, plus tok_A1b2c3 reading
500 times across 47 paths in 5 minutes (which must be found).

Runs, each in its own process, interleaved round by round (the order rotates every round):
- floor: `benchmarks/floor.py`, a bare loop that parses each line with orjson and writes a
  small object (the floor of any Python path);
- normalize: `secretsight normalize FILE > file` (its output lines count the events);
- scan: `secretsight scan --format json --timings FILE` with its default `--jobs` (2 on a
  machine with two CPUs: the stateful detectors in a second process), and scan_jobs1 the same
  with `--jobs 1` (everything in one process): CPU counts both processes (the worker is
  waited for, so wait4 adds its time); wall time is what two processes save;
- reference: `detect_bulk_reads`, copied below from /work/shared/design/secret-access-anomalies.txt
  section 3 (clearly not ours), on the WHOLE file, stopped after --reference-budget CPU
  seconds; a stopped run is reported as "not run" with the budget as a lower bound, never
  estimated.
Each run's CPU time (user + sys) and peak RSS come from `os.wait4` on that process alone. CPU
ratios to the floor, measured side by side, are what to compare between runs: absolute seconds
on a shared machine move with the other jobs' load (the load average is recorded before and
after). Figures are printed and written to build/bench/bench_scan.json, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
OUT = REPO / "build" / "bench"
START = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
HARVEST_AT = START + timedelta(hours=14, minutes=7)


# ---------------------------------------------------------------------------------------------
# Input generation (templated for speed; same shape as secretsight.scenarios.world.Timeline)

_TEMPLATE = (
    '{{"time":"{time}","type":"{type}","auth":{{"client_token":"hmac-sha256:{tok}",'
    '"accessor":"{acc}","display_name":"kubernetes-{name}","policies":["default","{name}"],'
    '"token_policies":["default","{name}"],"metadata":{{"role":"{name}"}},'
    '"entity_id":"{entity}","token_type":"service","token_ttl":3600}},'
    '"request":{{"id":"{rid}","operation":"read","mount_type":"kv","mount_point":"secret/",'
    '"client_token":"hmac-sha256:{tok}","client_token_accessor":"{acc}",'
    '"namespace":{{"id":"root"}},"path":"{path}","remote_address":"{ip}",'
    '"remote_port":{port}}}{resp}}}\n'
)
_RESPONSE = ',"response":{{"mount_type":"kv","data":{{"data":{{"value":"hmac-sha256:{val}"}}}}}}'


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def generate(path: Path, events: int, n_tokens: int = 400, seed: int = 1) -> None:
    """`events` operations (500 of them the harvest), each a request and a response line."""
    rng = random.Random(seed)
    ops = events
    tokens = []
    for i in range(n_tokens):
        name = f"svc{i:03d}"
        acc = f"tok_{hashlib.md5(name.encode()).hexdigest()[:10]}"
        paths = [f"secret/data/production/{name}/{k}" for k in ("db", "api-key", "tls")[: 1 + i % 3]]
        tokens.append((acc, name, hashlib.sha256(acc.encode()).hexdigest(),
                       hashlib.md5(acc.encode()).hexdigest(), paths, f"10.0.{i // 200}.{10 + i % 200}"))
    harvest_paths = [f"secret/data/{env}/{kind}/{n}" for env in ("production", "staging")
                     for kind in ("database", "api-keys", "certificates", "cloud")
                     for n in range(6)][:47]
    span = 75600.0  # seconds the steady traffic covers (~21 h)
    steady = ops - 500
    step = span / steady
    out = path.open("w", encoding="utf-8")

    def emit(t: datetime, token: tuple, p: str, ip: str) -> None:
        acc, name, tok, entity, _, _ = token
        rid = f"{rng.getrandbits(128):032x}"
        rid = f"{rid[:8]}-{rid[8:12]}-4{rid[13:16]}-a{rid[17:20]}-{rid[20:32]}"
        common = dict(tok=tok, acc=acc, name=name, entity=entity, rid=rid, path=p, ip=ip,
                      port=rng.randint(30000, 60999))
        out.write(_TEMPLATE.format(time=_stamp(t), type="request", resp="", **common))
        done = t + timedelta(microseconds=rng.randint(300, 4000))
        resp = _RESPONSE.format(val=hashlib.md5(rid.encode()).hexdigest())
        out.write(_TEMPLATE.format(time=_stamp(done), type="response", resp=resp, **common))

    harvester = ("tok_A1b2c3", "inventory", hashlib.sha256(b"A").hexdigest(),
                 hashlib.md5(b"A").hexdigest(), [], "10.0.1.33")
    harvest_done = 0
    for k in range(steady):
        t = START + timedelta(seconds=k * step)
        while harvest_done < 500 and HARVEST_AT + timedelta(seconds=0.598 * harvest_done) <= t:
            emit(HARVEST_AT + timedelta(seconds=0.598 * harvest_done), harvester,
                 harvest_paths[harvest_done % 47], "10.0.1.33")
            harvest_done += 1
        token = tokens[rng.randrange(len(tokens))]
        emit(t, token, token[4][rng.randrange(len(token[4]))], token[5])
    out.close()


# ---------------------------------------------------------------------------------------------
# REFERENCE (not SecretSight): detect_bulk_reads as published in
# /work/shared/design/secret-access-anomalies.txt, section 3, verbatim apart from formatting.
# Quadratic: for every read of an accessor it rescans all of that accessor's reads.

def parse_vault_audit(path: str):
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def detect_bulk_reads(audit_log_path, window_minutes=5, min_reads=30, min_distinct_paths=10,
                      accessor_allowlist=None):
    allowlist = accessor_allowlist or set()
    by_accessor = defaultdict(lambda: {"reads": [], "paths": set()})
    for event in parse_vault_audit(audit_log_path):
        if event.get("type") != "response":
            continue
        op = event.get("request", {}).get("operation", "")
        if op not in ("read", "list"):
            continue
        accessor = event.get("auth", {}).get("accessor", "unknown")
        if accessor in allowlist:
            continue
        try:
            ts = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            continue
        path = event.get("request", {}).get("path", "")
        by_accessor[accessor]["reads"].append(ts)
        by_accessor[accessor]["paths"].add(path)
    findings = []
    window = timedelta(minutes=window_minutes)
    for accessor, data in by_accessor.items():
        reads = sorted(data["reads"])
        if len(reads) < min_reads:
            continue
        for i, ts in enumerate(reads):  # noqa: B007 - the reference, kept verbatim
            burst = [r for r in reads if ts <= r <= ts + window]
            if len(burst) >= min_reads:
                distinct = len(data["paths"])
                if distinct >= min_distinct_paths:
                    findings.append({"type": "bulk_read_harvesting", "accessor": accessor,
                                     "reads_in_window": len(burst), "distinct_paths": distinct,
                                     "window_start": ts.isoformat(),
                                     "sample_paths": sorted(data["paths"])[:5],
                                     "severity": "critical"})
                    break
    return findings


# ---------------------------------------------------------------------------------------------

def measure(cmd: list[str], stdout: Path, cpu_budget: float | None = None,
            env: dict[str, str] | None = None) -> dict:
    """Run `cmd` to completion, or until it has used `cpu_budget` CPU seconds (RLIMIT_CPU: a
    budget in CPU time holds on a loaded machine, where wall time stretches). Wall and CPU
    seconds and peak RSS of that process alone (os.wait4), its exit code, whether it was
    stopped."""

    def limit() -> None:
        if cpu_budget is not None:
            seconds = max(1, int(cpu_budget))
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))

    with stdout.open("wb") as out, (stdout.with_suffix(".err")).open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO, env=env,
                                preexec_fn=limit)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stopped = proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit_code": proc.returncode,
            "stopped": stopped}


def _remove(out: Path) -> None:
    out.unlink()
    out.with_suffix(".err").unlink()


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def run_floor(log: Path) -> dict:
    out = OUT / f"floor-{os.getpid()}.out"  # unique: benchmarks may run side by side
    result = measure(_python(str(HERE / "floor.py"), str(log)), out)
    _remove(out)
    return result


def run_normalize(log: Path) -> dict:
    out = OUT / f"normalize-{os.getpid()}.out"  # unique: benchmarks may run side by side
    result = measure(_python("-c", "from secretsight.cli import main; main()", "normalize",
                             str(log)), out)
    with out.open("rb") as fh:
        result["events"] = sum(1 for _ in fh)
    _remove(out)
    return result


def run_scan(log: Path, baseline: Path | None = None, jobs: int | None = None) -> dict:
    """`baseline`: another checkout whose tools/ is put first on PYTHONPATH (before/after);
    `jobs`: scan's --jobs (None: its default)."""
    out = OUT / f"scan-{os.getpid()}.out"  # unique: benchmarks may run side by side
    env = None if baseline is None else {**os.environ, "PYTHONPATH": str(baseline / "tools")}
    extra = [] if jobs is None else ["--jobs", str(jobs)]
    result = measure(_python("-c", "from secretsight.cli import main; main()", "scan",
                             "--format", "json", "--timings", *extra, str(log)), out, env=env)
    findings = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    result["findings"] = sorted({(f["anomaly"], f["rule_name"], f["user"]["id"])
                                 for f in findings})
    result["timings"] = [line for line in out.with_suffix(".err").read_text().splitlines()
                         if line.startswith("timing") and not line.startswith("timing rule:")]
    _remove(out)
    return result


def run_reference(log: Path, budget: float) -> dict:
    out = OUT / f"reference-{os.getpid()}.out"  # unique: benchmarks may run side by side
    result = measure(_python(str(Path(__file__).resolve()), "--reference-run", str(log)), out,
                     cpu_budget=budget)
    if result["stopped"]:
        result = {"status": "not run", "stopped_after_cpu_s": result["cpu_s"],
                  "reason": f"exceeded --reference-budget {budget:g} CPU s (so it takes longer)"}
    else:
        result["findings"] = json.loads(out.read_text() or "[]")
    _remove(out)
    return result


RUNS = {"floor": run_floor, "normalize": run_normalize, "scan": run_scan,
        "scan_jobs1": lambda log: run_scan(log, jobs=1)}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else round((ordered[mid - 1] + ordered[mid]) / 2, 2)


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Medians over the rounds, and each run's CPU as a multiple of the floor's."""
    out: dict = {}
    floor_cpu = _median([r["cpu_s"] for r in runs.get("floor", [])]) if runs.get("floor") else None
    for name, results in runs.items():
        done = [r for r in results if "cpu_s" in r]
        if not done:
            out[name] = results[-1]
            continue
        entry = {key: _median([r[key] for r in done]) for key in ("wall_s", "cpu_s", "peak_rss_mb")}
        entry["rounds"] = [{"wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                            "load_1min_before": r.get("load_1min_before")} for r in done]
        if floor_cpu:
            entry["cpu_x_floor"] = round(entry["cpu_s"] / floor_cpu, 2)
        for key in ("events", "findings", "timings"):
            if key in done[-1]:
                entry[key] = done[-1][key]
        if len(done) < len(results):
            entry["not_run_rounds"] = len(results) - len(done)
        out[name] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", default="100000,300000,1000000",
                    help="comma-separated sizes, in events (each is 2 lines: request, response)")
    ap.add_argument("--tokens", type=int, default=400,
                    help="steady application tokens (fewer = more reads per accessor, which is "
                         "what makes the reference quadratic)")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds (medians reported)")
    ap.add_argument("--reference-budget", type=float, default=600.0,
                    help="CPU seconds the reference may take on one file before it is stopped "
                         "and reported as not run")
    ap.add_argument("--only", default="floor,normalize,scan,scan_jobs1,reference",
                    help="comma-separated runs to do (floor, normalize, scan, scan_jobs1, "
                         "reference)")
    ap.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                    help="also run `scan` from this checkout (e.g. a worktree of main): "
                         "before/after in the same interleaved run")
    ap.add_argument("--json", type=Path, help="where to write the results (default: "
                    "build/bench/bench_scan.json; give another to run sizes side by side)")
    ap.add_argument("--reference-run", metavar="LOG", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_run:  # the reference's own process (see run_reference)
        print(json.dumps(sorted(f["accessor"] for f in detect_bulk_reads(args.reference_run))))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = args.only.split(",")
    sizes = [int(n) for n in args.events.split(",")]
    logs = {}
    for events in sizes:
        log = OUT / (f"vault-{events}ev.log" if args.tokens == 400
                     else f"vault-{events}ev-{args.tokens}tok.log")
        if not log.exists():
            started = time.perf_counter()
            generate(log, events, args.tokens)
            print(f"generated {log} ({log.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - started:.1f}s", flush=True)
        logs[events] = log
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_before": os.getloadavg()},
        "reference_budget_s": args.reference_budget, "repeat": args.repeat, "sizes": [],
    }
    runs: dict[int, dict[str, list[dict]]] = {n: {} for n in sizes}
    order = [name for name in ("floor", "normalize", "scan", "scan_jobs1", "reference")
             if name in wanted]
    if args.baseline:
        order.insert(order.index("scan") + 1 if "scan" in order else 0, "scan_baseline")
    for round_no in range(args.repeat):
        rotated = order[round_no % len(order):] + order[:round_no % len(order)]
        for events in sizes:
            for name in rotated:
                load_1min = round(os.getloadavg()[0], 2)  # what this run shared the box with
                if name == "reference":
                    outcome = run_reference(logs[events], args.reference_budget)
                elif name == "scan_baseline":
                    outcome = run_scan(logs[events], args.baseline)
                else:
                    outcome = RUNS[name](logs[events])
                outcome["load_1min_before"] = load_1min
                runs[events].setdefault(name, []).append(outcome)
                print(f"round {round_no + 1} {events} events {name}: "
                      + json.dumps({k: v for k, v in outcome.items() if k != "findings"}),
                      flush=True)
    for events in sizes:
        result["sizes"].append({"events": events, "lines": 2 * events,
                                "input_mb": round(logs[events].stat().st_size / 1e6, 1),
                                **summarize(runs[events])})
    result["machine"]["load_after"] = os.getloadavg()
    name = "bench_scan.json" if args.tokens == 400 else f"bench_scan-{args.tokens}tok.json"
    (args.json or OUT / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(table(result))


def table(result: dict) -> str:
    """The figures as a Markdown table (what the docs quote)."""
    rows = ["| events (lines) | run | wall s | events/s (wall) | CPU s | CPU x floor | "
            "wall x floor CPU | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for size in result["sizes"]:
        label = f"{size['events']:,} ({size['lines']:,})"
        floor = size.get("floor", {}).get("cpu_s")
        for name in ("floor", "normalize", "scan", "scan_jobs1", "scan_baseline", "reference"):
            entry = size.get(name)
            if entry is None:
                continue
            if "cpu_s" not in entry:
                rows.append(f"| {label} | {name} | not run | | > {entry['stopped_after_cpu_s']} "
                            "| | | |")
                continue
            rate = f"{size['events'] / entry['wall_s']:,.0f}" if entry["wall_s"] else ""
            wall_x = f"{entry['wall_s'] / floor:.2f}" if floor else ""
            rows.append(f"| {label} | {name} | {entry['wall_s']} | {rate} | {entry['cpu_s']} | "
                        f"{entry.get('cpu_x_floor', '')} | {wall_x} | {entry['peak_rss_mb']} |")
    load = result["machine"]
    rows.append(f"\nAn event is one Vault operation, logged as two lines (request, response). "
                f"{load['cpus']} CPUs, Python {load['python']}, load average (1 min) before "
                f"{load['load_before'][0]:.1f}, after {load['load_after'][0]:.1f}; CPU = user + "
                f"sys of the run and the processes it waited for; wall x floor CPU: the run's "
                f"wall time over the floor's CPU time (what a second process can lower).")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
