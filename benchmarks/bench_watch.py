"""Benchmark: raw Vault audit lines per second per core through `watch` with every rule on.

    .venv/bin/python benchmarks/bench_watch.py [--events 400000] [--state sqlite|memory]
                                              [--only decode,detectors,rules,all_rules]

The input is bench_scan.py's generated Vault log (400 application tokens re-reading their
secrets, each operation a request and a response line, plus one 500-read harvest that must be
found). Each run is ONE Python process on one core; "per core" is lines / CPU seconds of that
process (time.process_time), printed next to the wall-clock rate (the machine may be shared).

Runs, each over the same file:
1. decode: raw line -> normalized events (the watch decoder) only;
2. detectors: + the stateful detectors `scan` runs, through the reorder buffer (no rules);
3. rules: + every embedded Sigma rule (plain and correlation) and the incidents, driven as
   run 2 (in memory, no watch loop): what the rules cost is run 3 minus run 2;
4. all rules: the same as run 3 through `secretsight watch`'s real loop (`Watcher`: metrics,
   a file output, a commit each second of wall clock into a SQLite state file).
`--only all_rules` runs the real loop alone (what a before/after pair needs); its line also
prints the MD5 of the findings file it wrote, which must not change with a speed change.
Results: build/bench/bench_watch.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_scan import generate  # noqa: E402 - after the sys.path lines above

from secretsight.config import Config  # noqa: E402
from secretsight.detect import open_store  # noqa: E402
from secretsight.stream import open_detectors  # noqa: E402
from secretsight.watch.decode import decode_line  # noqa: E402
from secretsight.watch.outputs import FileOutput  # noqa: E402
from secretsight.watch.runner import Watcher  # noqa: E402

OUT = ROOT / "build" / "bench"


def _timed(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


PHASES = ("decode", "detectors", "rules", "all_rules")


def run(lines_path: Path, state: str, tmp: Path,
        only: tuple[str, ...] = PHASES) -> dict[str, object]:
    raw = lines_path.read_bytes().splitlines()
    n = len(raw)
    if only == ("all_rules",):
        raw = []  # (the loop reads the file itself: no copy of it held during the run)
    config = Config()
    out: dict[str, object] = {"lines": n}

    def decode_only() -> int:
        events = 0
        for line in raw:
            try:
                events += len(decode_line(line))
            except Exception:  # noqa: BLE001 - skipped request lines count as lines read
                pass
        return events

    if "decode" in only:
        events, wall, cpu = _timed(decode_only)
        out["decode"] = {"events": events, "wall_s": wall, "cpu_s": cpu}

    def drive(det) -> int:  # type: ignore[no-untyped-def]
        """Decode every line and feed the events to `det`: findings (or reports) out."""
        found = 0
        for line in raw:
            try:
                for e in decode_line(line):
                    found += len(det.process(e))
            except Exception:  # noqa: BLE001 - skipped request lines count as lines read
                pass
        return found + len(det.finish())

    if "detectors" in only:
        found, wall, cpu = _timed(lambda: drive(open_detectors(
            config, open_store(None), rules=False, incidents=False, log=lambda m: None)))
        out["detectors"] = {"findings": found, "wall_s": wall, "cpu_s": cpu}

    if "rules" in only:
        found, wall, cpu = _timed(lambda: drive(open_detectors(
            config, open_store(None), log=lambda m: None)))
        out["rules"] = {"reports": found, "wall_s": wall, "cpu_s": cpu}

    def everything() -> list[dict[str, object]]:
        store = open_store(f"sqlite:///{tmp}/state.db" if state == "sqlite" else None)
        det = open_detectors(config, store, log=lambda m: None)
        sink = tmp / "findings.ndjson"
        watcher = Watcher(det, files=[str(lines_path)], outputs=[FileOutput(str(sink))],
                          exit_at_eof=True, log=lambda m: None)
        watcher.run()
        watcher.close()
        store.close()
        return [json.loads(x) for x in sink.read_text().splitlines()]

    if "all_rules" not in only:
        return out
    reports, wall, cpu = _timed(everything)
    final: dict[str, dict[str, object]] = {}
    for r in reports:
        inc = r["incident"]
        final[inc["id"]] = r  # type: ignore[index]
    out["all_rules"] = {
        "reports": len(reports), "incidents": sorted(
            f"{r['anomaly']} {r['rule_name']} {r['user']['id']}"  # type: ignore[index]
            for r in final.values()),
        "wall_s": wall, "cpu_s": cpu,
        "findings_md5": hashlib.md5((tmp / "findings.ndjson").read_bytes()).hexdigest()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=400_000,
                    help="Vault operations to generate; each is two raw lines")
    ap.add_argument("--state", choices=["sqlite", "memory"], default="sqlite")
    ap.add_argument("--only", default=",".join(PHASES),
                    help=f"comma-separated runs to do, of {', '.join(PHASES)} (default: all)")
    args = ap.parse_args()
    asked = set(args.only.split(","))
    only = tuple(p for p in PHASES if p in asked)
    if asked - set(PHASES) or not only:
        ap.error(f"--only: unknown run(s) {', '.join(sorted(asked - set(PHASES)))}; "
                 f"choose from {', '.join(PHASES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    src = OUT / f"vault-{args.events}.log"
    if not src.exists():
        generate(src, args.events)
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        result = run(src, args.state, Path(tmp), only)
    n = result["lines"]
    for phase in only:
        r = result[phase]
        assert isinstance(r, dict) and isinstance(n, int)
        r["lines_per_cpu_s"] = round(n / r["cpu_s"])
        r["lines_per_wall_s"] = round(n / r["wall_s"])
        print(f"{phase:10s} {r['lines_per_cpu_s']:>8,} lines/s per core (CPU)   "
              f"{r['lines_per_wall_s']:>8,} lines/s wall   ({r['cpu_s']:.2f} s CPU)")
    if "all_rules" in only:
        print("incidents:", result["all_rules"]["incidents"],  # type: ignore[index]
              "findings md5:", result["all_rules"]["findings_md5"])  # type: ignore[index]
    (OUT / "bench_watch.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
