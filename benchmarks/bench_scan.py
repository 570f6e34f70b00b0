"""Benchmark: `secretsight scan` on a generated 1M-event Vault audit log with a harvesting burst,
against the reference design's quadratic bulk-read detector.

    .venv/bin/python benchmarks/bench_scan.py                 # 1,000,000 audit entries
    .venv/bin/python benchmarks/bench_scan.py --events 200000 --reference-caps 5000,10000,20000

"1M events" = 1,000,000 Vault audit entries (lines): 500,000 operations, each logged as a
request and a response entry, as a file audit device writes them. The workload: 400 application
tokens (`--tokens`) re-reading their secrets from 10.0.0.0/16 over ~21 hours, plus
tok_A1b2c3 reading 500 times across 47 paths in 5 minutes (which must be found).

Measured: wall time and peak RSS of the `scan` process (target: < 60 s, < 2 GB), `scan
--timings` phase breakdown; then the REFERENCE detector (`detect_bulk_reads`, copied below from
/work/shared/design/secret-access-anomalies.txt section 3, clearly not ours) on the first N
entries for a few N, extrapolated to the full log with its O(n^2) cost (it would take hours).
Results: build/bench/bench_scan.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def generate(path: Path, entries: int, n_tokens: int = 400, seed: int = 1) -> None:
    rng = random.Random(seed)
    ops = entries // 2
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

def run_scan(log: Path) -> dict:
    cmd = [sys.executable, "-c", "from secretsight.cli import main; main()", "scan",
           "--format", "json", "--timings", str(log)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    findings = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return {
        "exit_code": proc.returncode,
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(max(peak_kb, before) / 1024, 1),
        "findings": sorted({(f["anomaly"], f["rule_name"], f["user"]["id"]) for f in findings}),
        "timings": [line for line in proc.stderr.splitlines() if line.startswith("timing")],
        "stderr_tail": proc.stderr.splitlines()[-5:],
    }


def run_reference(log: Path, caps: list[int]) -> dict:
    points = []
    for cap in caps:
        part = OUT / f"reference-{cap}.log"
        with log.open() as src, part.open("w") as dst:
            for i, line in enumerate(src):
                if i >= cap:
                    break
                dst.write(line)
        started = time.perf_counter()
        found = detect_bulk_reads(str(part))
        points.append({"entries": cap, "seconds": round(time.perf_counter() - started, 2),
                       "findings": len(found)})
        part.unlink()
    return {"measured": points}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="audit entries (lines)")
    ap.add_argument("--reference-caps", default="10000,20000,40000",
                    help="entries given to the quadratic reference detector")
    ap.add_argument("--tokens", type=int, default=400,
                    help="steady application tokens (fewer = more reads per accessor, which is "
                         "what makes the reference quadratic)")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-scan", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / (f"vault-{args.events}.log" if args.tokens == 400
                 else f"vault-{args.events}-{args.tokens}tok.log")
    if not log.exists():
        started = time.perf_counter()
        generate(log, args.events, args.tokens)
        print(f"generated {log} ({log.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
    result = {"entries": args.events, "tokens": args.tokens,
              "input_mb": round(log.stat().st_size / 1e6, 1)}
    if not args.skip_scan:
        result["scan"] = run_scan(log)
        print(json.dumps(result["scan"], indent=2), flush=True)
    if not args.skip_reference:
        caps = [int(c) for c in args.reference_caps.split(",")]
        ref = run_reference(log, caps)
        # Quadratic fit through the largest measured point: t(n) = t(cap) * (n / cap)^2. The
        # reads of one accessor grow linearly with the log, its rescans quadratically.
        last = ref["measured"][-1]
        estimate = last["seconds"] * (args.events / last["entries"]) ** 2
        ref["extrapolated_seconds_full_log"] = round(estimate)
        if estimate < 900:
            # Cheap enough: measure the whole log instead of trusting the extrapolation.
            started = time.perf_counter()
            found = detect_bulk_reads(str(log))
            ref["full_log"] = {"seconds": round(time.perf_counter() - started, 1),
                               "findings": [f["accessor"] for f in found]}
            ref["note"] = "reference detect_bulk_reads from the design document, whole log"
        else:
            ref["note"] = ("reference detect_bulk_reads from the design document, run on the "
                           "first N entries only (the whole log would take "
                           f"~{estimate / 3600:.1f} h) and extrapolated quadratically")
        result["reference"] = ref
        print(json.dumps(ref, indent=2), flush=True)
    name = "bench_scan.json" if args.tokens == 400 else f"bench_scan-{args.tokens}tok.json"
    (OUT / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
