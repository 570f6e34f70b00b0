"""The three normalizer implementations, called as their runtimes call them, over raw files.

- python: `secretsight.normalize.iter_files` (dedupe off: the replay dedupes, as for the others);
- vrl: `vector/<source>.vrl` on vrl-python, one `{"message": line}` per raw line, as Vector's
  file source hands lines to a remap transform (support.vrl_programs);
- lua: `fluentbit/<source>.lua` on LuaJIT via lupa, `cb_filter(tag, ts, {log = line})` as
  Fluent Bit's tail input + Lua filter call it (support.lua_filters).
Each returns (normalized events, dead-letter count); a missing program raises Unavailable.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
IMPLEMENTATIONS = ("python", "vrl", "lua")


class Unavailable(Exception):
    """The implementation cannot run here (missing program or runtime): skip, saying why."""


def source_of(path: Path) -> str:
    name = path.name
    if name.startswith("vault"):
        return "vault"
    if name.startswith("cloudtrail"):
        return "cloudtrail"
    if name.startswith("kube"):
        return "kubernetes"
    raise ValueError(f"cannot tell the source of {path}")


def _load(name: str) -> Any:
    """A support module whose runtime package (vrl-python, lupa) may be missing, or Unavailable
    saying why it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise Unavailable(f"{name}: {exc}") from exc


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def run_python(files: list[Path]) -> tuple[list[dict[str, Any]], int]:
    from secretsight.normalize import Stats, iter_files

    stats = Stats()
    events = list(iter_files(files, stats=stats, dedupe=False))
    return events, stats.dead_lettered_total


def run_vrl(files: list[Path]) -> tuple[list[dict[str, Any]], int]:
    try:
        from vrl_python import VRLRuntime
    except ImportError as exc:
        raise Unavailable(f"vrl-python not installed: {exc}") from exc
    items_mod = _load("support.vrl_programs")
    events: list[dict[str, Any]] = []
    dead = 0
    runtimes: dict[str, Any] = {}
    for path in files:
        source = source_of(path)
        program_path = REPO / "vector" / f"{source}.vrl"
        if not program_path.is_file():
            raise Unavailable(f"vector/{source}.vrl is missing")
        program = program_path.read_text("utf-8")
        runtime = runtimes.setdefault(source, VRLRuntime())
        for line in _lines(path):
            result = runtime.execute(program, {"message": items_mod.message(line)})
            for item in items_mod.to_items(result.processed_event):
                if "event" in item:
                    events.append(item["event"])
                elif "dead_letter" in item:
                    dead += 1
    return events, dead


def run_lua(files: list[Path]) -> tuple[list[dict[str, Any]], int]:
    try:
        import lupa  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"lupa not installed: {exc}") from exc
    lua_mod = _load("support.lua_filters")
    events: list[dict[str, Any]] = []
    dead = 0
    filters: dict[str, Any] = {}
    for path in files:
        source = source_of(path)
        if not (REPO / "fluentbit" / f"{source}.lua").is_file():
            raise Unavailable(f"fluentbit/{source}.lua is missing")
        flt = filters.get(source)
        if flt is None:
            flt = filters[source] = lua_mod.LuaFilter(source)
        for line in _lines(path):
            for item in lua_mod.normalize(flt, line):
                if "event" in item:
                    events.append(item["event"])
                elif "dead_letter" in item:
                    dead += 1
    return events, dead


RUNNERS = {"python": run_python, "vrl": run_vrl, "lua": run_lua}
