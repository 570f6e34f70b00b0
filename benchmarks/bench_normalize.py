"""Normalizer throughput on a generated Vault audit log.

    .venv/bin/python benchmarks/bench_normalize.py [--lines 200000] [--other-lines 20000] [--seed 7]
        [--rounds 5]

Generates a seeded Vault file audit log (request + response entry pairs: KV v2 reads and lists,
writes, database credentials, logins, token creation, permission-denied errors; ~1 KB lines) in
a temp dir, then prints lines/s for:
- the Python normalizer (`iter_files`: read, parse, normalize, dedupe: what `scan` runs);
- the VRL program `vector/vault.vrl` through vrl-python (one `execute` per line, so the
  Python<->Rust conversion of each event is included: a lower bound for Vector itself);
- the Lua filter `fluentbit/vault.lua` under LuaJIT (lupa), called from a Lua loop as Fluent
  Bit calls it from C (record = {log = raw line}).
The VRL and Lua runs use the first --other-lines lines; each is skipped with a message when its
program or runtime is missing. CPU time (process_time) is reported beside wall time because
the shared CI machines are noisy; the Python normalizer's CPU is also given as a multiple of the
orjson floor's on the same file (`benchmarks/floor.py`: parse each line, write a small object).
The floor and the normalizer run alternately for --rounds rounds: the ratio printed is the median
of the rounds' ratios (each round's two runs see about the same load), with the range beside it,
and the load average before and after, so a figure can be read against the load it was taken in.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

APPS = ["payments", "checkout", "ledger", "search", "mailer", "billing", "auth", "reports"]
SECRETS = ["db", "api-key", "stripe", "tls", "smtp", "redis", "s3", "oauth"]


def _hmac(rng: random.Random) -> str:
    return "hmac-sha256:" + "".join(rng.choice("0123456789abcdef") for _ in range(64))


def vault_log(lines: int, seed: int) -> list[str]:
    """`lines` Vault audit entries (request/response pairs), deterministic for a seed."""
    rng = random.Random(seed)
    accessors = [
        (
            _hmac(rng),
            f"kubernetes-{app}-{app}-svc",
            ["default", f"{app}-read"],
            f"10.0.{i}.{i + 10}",
        )
        for i, app in enumerate(APPS)
    ]
    out: list[str] = []
    start = 1_778_320_800  # 2026-05-09T10:00:00Z
    n = 0
    while len(out) < lines:
        n += 1
        accessor, name, policies, ip = rng.choice(accessors)
        app, secret = rng.choice(APPS), rng.choice(SECRETS)
        roll = rng.random()
        data = None
        response: dict[str, Any] = {"mount_type": "kv"}
        error = None
        if roll < 0.70:
            op, path, mount = "read", f"secret/data/{app}/{secret}", "kv"
            response["data"] = {
                "data": {"password": _hmac(rng), "username": _hmac(rng)},
                "metadata": {
                    "created_time": _hmac(rng),
                    "destroyed": False,
                    "version": rng.randint(1, 9),
                },
            }
        elif roll < 0.78:
            op, path, mount = "list", f"secret/metadata/{app}/", "kv"
            response["data"] = {"keys": [_hmac(rng) for _ in range(rng.randint(2, 12))]}
        elif roll < 0.85:
            op, path, mount = "update", f"secret/data/{app}/{secret}", "kv"
            data = {"data": {"password": _hmac(rng)}, "options": {}}
            response["data"] = {"created_time": _hmac(rng), "version": rng.randint(2, 9)}
        elif roll < 0.91:
            op, path, mount = "read", f"database/creds/{app}", "database"
            response = {
                "mount_type": "database",
                "data": {"username": _hmac(rng), "password": _hmac(rng)},
            }
        elif roll < 0.95:
            op, path, mount = "update", "auth/kubernetes/login", "kubernetes"
            data = {"jwt": _hmac(rng), "role": _hmac(rng)}
            response = {
                "auth": {
                    "client_token": _hmac(rng),
                    "accessor": _hmac(rng),
                    "policies": policies,
                    "token_ttl": 3600,
                }
            }
        elif roll < 0.97:
            op, path, mount = "update", "auth/token/create", "token"
            data = {"ttl": _hmac(rng), "policies": [_hmac(rng)]}
            response = {
                "mount_type": "token",
                "auth": {
                    "client_token": _hmac(rng),
                    "accessor": _hmac(rng),
                    "policies": policies,
                    "token_ttl": 600,
                },
            }
        else:
            op, path, mount = "read", f"secret/data/admin/{secret}", "kv"
            response = {"mount_type": "kv", "data": {"error": _hmac(rng)}}
            error = "1 error occurred:\n\t* permission denied\n\n"
        t = start + n * 0.05
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"
        auth = {
            "client_token": _hmac(rng),
            "accessor": accessor,
            "display_name": name,
            "policies": policies,
            "token_policies": policies,
            "metadata": {"role": "svc"},
            "entity_id": f"{n:08x}-0000-4000-8000-000000000000",
            "token_type": "service",
            "token_ttl": 3600,
            "token_issue_time": "2026-05-09T09:00:00Z",
        }
        request: dict[str, Any] = {
            "id": f"{n:08x}-1111-4000-8000-{rng.getrandbits(48):012x}",
            "operation": op,
            "mount_type": mount,
            "client_token": auth["client_token"],
            "client_token_accessor": accessor,
            "namespace": {"id": "root"},
            "path": path,
            "remote_address": ip,
        }
        if data is not None:
            request["data"] = data
        req_entry: dict[str, Any] = {
            "time": stamp,
            "type": "request",
            "auth": auth,
            "request": request,
        }
        resp_entry: dict[str, Any] = {
            "time": stamp,
            "type": "response",
            "auth": auth,
            "request": request,
            "response": response,
        }
        if error:
            req_entry["error"] = "permission denied"
            resp_entry["error"] = error
        out.append(json.dumps(req_entry, separators=(",", ":")))
        out.append(json.dumps(resp_entry, separators=(",", ":")))
    return out[:lines]


def _rate(count: int, wall: float, cpu: float) -> str:
    return f"{count / wall:>10,.0f} lines/s wall, {count / cpu:>10,.0f} lines/s cpu ({count:,} lines, {wall:.2f} s)"


def floor_cpu(path: Path) -> float:
    """CPU seconds of the orjson floor (benchmarks/floor.py) over the same file."""
    import io

    from floor import floor

    cpu = time.process_time()
    floor(str(path), io.BytesIO())
    return time.process_time() - cpu


def python_cpu(path: Path, lines: int) -> tuple[float, float, int]:
    """(wall, CPU seconds, events out) of `iter_files` over `path`: what `scan` reads through."""
    sys.path.insert(0, str(REPO / "tools"))
    from secretsight.normalize import Stats, iter_files

    stats = Stats()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in iter_files([path], "vault", stats):
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert stats.lines == lines and stats.balanced(), stats.summary()
    return wall, cpu, stats.normalized


def bench_python(path: Path, lines: int, rounds: int) -> str:
    """The normalizer against the floor, alternating the two for `rounds` rounds."""
    floor_cpu(path)  # warm the page cache and imports outside the timing
    ratios, floors, runs = [], [], []
    for _ in range(rounds):
        floor_s = floor_cpu(path)
        wall, cpu, events = python_cpu(path, lines)
        ratios.append(cpu / floor_s)
        floors.append(floor_s)
        runs.append((wall, cpu))
    wall, cpu = min(runs, key=lambda run: run[1])
    return (
        _rate(lines, wall, cpu) + f"; {events:,} events out; "
        f"{statistics.median(ratios):.2f}x the CPU of the orjson floor (median of {rounds} "
        f"interleaved rounds, {min(ratios):.2f}-{max(ratios):.2f}; floor "
        f"{min(floors):.2f} s)"
    )


def bench_vrl(raw_lines: list[str]) -> str:
    program_path = REPO / "vector" / "vault.vrl"
    if not program_path.is_file():
        return "skipped: vector/vault.vrl not found"
    try:
        from vrl_python import VRLRuntime
    except ImportError:
        return "skipped: vrl-python not installed"
    runtime = VRLRuntime()
    source = program_path.read_text("utf-8")
    runtime.execute(source, {"message": raw_lines[0]})  # compile once, outside the timing
    wall, cpu = time.perf_counter(), time.process_time()
    for line in raw_lines:
        runtime.execute(source, {"message": line})
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return _rate(len(raw_lines), wall, cpu)


_LUA_LOOP = """
function(lines, n)
  local ts = {sec = 1700000000, nsec = 0}
  local kept = 0
  for i = 1, n do
    local code = cb_filter("secretsight.vault", ts, {log = lines[i]})
    if code ~= -1 then kept = kept + 1 end
  end
  return kept
end
"""


def bench_lua(raw_lines: list[str]) -> str:
    script = REPO / "fluentbit" / "vault.lua"
    if not script.is_file():
        return "skipped: fluentbit/vault.lua not found"
    try:
        from lupa import luajit21
    except ImportError:
        return "skipped: lupa (LuaJIT) not installed"
    lua = luajit21.LuaRuntime(encoding=None)
    lua.globals().dofile(str(script).encode())
    if lua.globals()[b"cb_filter"] is None:
        return "skipped: fluentbit/vault.lua defines no cb_filter"
    loop = lua.eval(_LUA_LOOP)
    table = lua.table_from([line.encode() for line in raw_lines])
    loop(table, 1)  # warm up the JIT on one line, outside the timing
    wall, cpu = time.perf_counter(), time.process_time()
    loop(table, len(raw_lines))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return _rate(len(raw_lines), wall, cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument(
        "--other-lines",
        type=int,
        default=20_000,
        help="lines for the VRL and Lua runs (slower harnesses)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved floor/normalizer rounds")
    args = parser.parse_args(argv)

    raw = vault_log(args.lines, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vault-audit.log"
        path.write_text("\n".join(raw) + "\n", "utf-8")
        size = path.stat().st_size
        print(f"generated {len(raw):,} Vault lines ({size / 1e6:.1f} MB, seed {args.seed})")
        print("load average before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"python  iter_files : {bench_python(path, len(raw), args.rounds)}")
        print("load average after:  " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    subset = raw[: args.other_lines]
    print(f"vrl     vault.vrl  : {bench_vrl(subset)}")
    print(f"lua     vault.lua  : {bench_lua(subset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
