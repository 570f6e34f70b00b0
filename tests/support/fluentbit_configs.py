"""Fluent Bit's two config formats read into one shape, with no fluent-bit binary: the classic
format by a tiny parser (sections, `key value` lines, `@SET` variables), the YAML one with
PyYAML; both become {section: [ {key: value} ]} with Fluent Bit's case-insensitive keys and
booleans folded, so the tests compare them and follow a tag to its outputs."""

from __future__ import annotations

import fnmatch
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from support.lua_filters import FLUENTBIT_DIR

YAML_CONFIG = FLUENTBIT_DIR / "fluent-bit.yaml"
CLASSIC_CONFIG = FLUENTBIT_DIR / "fluent-bit.conf"
SECTIONS = ("service", "inputs", "filters", "outputs")
_TRUE = {"on", "true", "yes"}
_FALSE = {"off", "false", "no"}
_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def _value(v: Any, env: dict[str, str]) -> Any:
    if isinstance(v, list):
        return [_value(x, env) for x in v]
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:  # YAML `null` (e.g. the null output's name) is the string to Fluent Bit
        return "null"
    s = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), str(v)).strip()
    low = s.lower()
    if low in _TRUE:
        return "true"
    if low in _FALSE:
        return "false"
    return s


def _section(props: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return {str(k).lower(): _value(v, env) for k, v in props.items()}


def load_yaml(path: Path) -> dict[str, list[dict[str, Any]]]:
    doc = yaml.safe_load(path.read_text("utf-8"))
    env = {str(k): str(v) for k, v in (doc.get("env") or {}).items()}
    pipeline = doc["pipeline"]
    out = {"service": [_section(doc.get("service") or {}, env)]}
    for name in ("inputs", "filters", "outputs"):
        out[name] = [_section(p, env) for p in pipeline.get(name) or []]
    return out


def load_classic(path: Path) -> dict[str, list[dict[str, Any]]]:
    env: dict[str, str] = {}
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS}
    names = {"SERVICE": "service", "INPUT": "inputs", "FILTER": "filters", "OUTPUT": "outputs"}
    raw: list[tuple[str, list[tuple[str, str]]]] = []
    for lineno, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("@SET "):
            key, _, val = text[5:].partition("=")
            env[key.strip()] = val.strip()
        elif text.startswith("@"):
            raise AssertionError(f"{path.name}:{lineno}: unsupported directive {text!r}")
        elif text.startswith("[") and text.endswith("]"):
            section = text[1:-1].strip().upper()
            if section not in names:
                raise AssertionError(f"{path.name}:{lineno}: unknown section [{section}]")
            raw.append((names[section], []))
        else:
            if not raw:
                raise AssertionError(f"{path.name}:{lineno}: property outside a section")
            key, _, val = text.partition(" ")
            raw[-1][1].append((key, val.strip()))
    for section, pairs in raw:
        props: dict[str, Any] = {}
        for key, val in pairs:
            k = key.lower()
            if k in props:  # a repeated key (e.g. several Rule lines) is a list, as in YAML
                props[k] = (props[k] if isinstance(props[k], list) else [props[k]]) + [val]
            else:
                props[k] = val
        out[section].append(_section(props, env))
    return out


def tag_matches(pattern: str, tag: str) -> bool:
    """A `Match` pattern against a tag, as Fluent Bit's router matches them (`*` wildcards)."""
    return fnmatch.fnmatchcase(tag, pattern)


@cache
def both_formats() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """fluent-bit.yaml and fluent-bit.conf, read."""
    return {"yaml": load_yaml(YAML_CONFIG), "classic": load_classic(CLASSIC_CONFIG)}
