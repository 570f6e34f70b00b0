"""fluent-bit.yaml and fluent-bit.conf describe the same pipeline, and that pipeline is sound.

No fluent-bit binary exists here, so the classic format is read by a tiny parser below (sections,
`key value` lines, `@SET` variables) and the YAML one with PyYAML; both become the same shape
({section: [ {key: value} ]}) with Fluent Bit's case-insensitive keys and booleans folded.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lua_filter import FLUENTBIT_DIR, LuaFilter

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


@pytest.fixture(scope="module")
def yaml_cfg() -> dict[str, list[dict[str, Any]]]:
    return load_yaml(YAML_CONFIG)


@pytest.fixture(scope="module")
def classic_cfg() -> dict[str, list[dict[str, Any]]]:
    return load_classic(CLASSIC_CONFIG)


PAIRS = {"main": "fluent-bit", "watch_leg": "watch-http-output"}


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("stem", PAIRS.values(), ids=PAIRS.keys())
def test_both_formats_describe_the_same_pipeline(stem, section):
    yaml_cfg = load_yaml(FLUENTBIT_DIR / f"{stem}.yaml")
    classic_cfg = load_classic(FLUENTBIT_DIR / f"{stem}.conf")
    assert yaml_cfg[section] == classic_cfg[section]


@pytest.mark.parametrize("fmt", ["yaml", "classic"])
def test_every_lua_filter_script_exists_and_defines_its_call(fmt, yaml_cfg, classic_cfg):
    cfg = yaml_cfg if fmt == "yaml" else classic_cfg
    lua_filters = [f for f in cfg["filters"] if f["name"] == "lua"]
    assert {f["script"] for f in lua_filters} == {
        "vault.lua",
        "cloudtrail.lua",
        "kubernetes.lua",
        "long_lines.lua",
    }
    for f in lua_filters:
        script = FLUENTBIT_DIR / f["script"]
        assert script.is_file(), script
        source = script.stem
        if source in ("vault", "cloudtrail", "kubernetes"):
            flt = LuaFilter(source)
            assert flt.lua.globals()[f["call"].encode()] is not None


def _tag_matches(pattern: str, tag: str) -> bool:
    return fnmatch.fnmatchcase(tag, pattern)


def test_each_source_input_reaches_exactly_its_normalizer(yaml_cfg):
    scripts = {
        "secretsight.vault": "vault.lua",
        "secretsight.cloudtrail": "cloudtrail.lua",
        "secretsight.kubernetes": "kubernetes.lua",
        "secretsight.fluentbit": "long_lines.lua",
    }
    tails = [i for i in yaml_cfg["inputs"] if i["name"] == "tail"]
    assert sorted(i["tag"] for i in tails) == sorted(scripts)
    for inp in tails:
        lua = [
            f["script"]
            for f in yaml_cfg["filters"]
            if f["name"] == "lua" and _tag_matches(f["match"], inp["tag"])
        ]
        assert lua == [scripts[inp["tag"]]], inp["tag"]


@pytest.mark.parametrize("alias", ["vault_audit", "cloudtrail", "kubernetes_audit"])
def test_source_inputs_read_raw_lines_with_offsets_and_room_for_huge_lines(alias, yaml_cfg):
    inp = next(i for i in yaml_cfg["inputs"] if i.get("alias") == alias)
    assert "parser" not in inp  # the Lua filter must see the raw line
    assert inp["db"].endswith(".db")
    assert inp["skip_long_lines"] == "true"
    assert inp["skip_empty_lines"] == "false"
    # Bigger than dispositions.yml max_line_bytes (64 MiB): such lines reach Lua and are
    # dead-lettered there, with file and offset.
    assert inp["buffer_max_size"].endswith("M") and int(inp["buffer_max_size"][:-1]) > 64
    assert (inp["path_key"], inp["offset_key"]) == ("file", "offset")


def test_dispositions_are_routed_and_nothing_else_is(yaml_cfg):
    rules = [f["rule"] for f in yaml_cfg["filters"] if f["name"] == "rewrite_tag"]
    assert rules == [
        "$dead_letter ^.+$ secretsight_dead_letter.$TAG[1] false",
        "$skip ^.+$ secretsight_skip.$TAG[1] false",
    ]
    outputs = yaml_cfg["outputs"]
    for tag in ("secretsight_dead_letter.vault", "secretsight_skip.kubernetes"):
        matched = [o["alias"] for o in outputs if _tag_matches(o["match"], tag)]
        assert matched, f"{tag} reaches no output"
        assert not {
            "loki_vault_events",
            "loki_cloudtrail_events",
            "loki_kubernetes_events",
            "elasticsearch_events",
            "splunk_events",
            "secretsight_watch",
        } & set(matched), f"{tag} would reach the event outputs"
    # No Lua normalizer matches a re-emitted tag (it would be normalized twice).
    for f in yaml_cfg["filters"]:
        if f["name"] == "lua":
            assert not _tag_matches(f["match"], "secretsight_dead_letter.vault")


def _output(cfg: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    found = [o for o in cfg["outputs"] if o["name"] == name and o["match"] == "secretsight.*"]
    assert len(found) == 1, name
    return found[0]


def test_event_outputs(yaml_cfg):
    # Loki: one output per source, static labels (tests/fluentbit/test_loki_output.py)
    es = _output(yaml_cfg, "es")
    assert es["time_key"] != "@timestamp"  # events carry their own @timestamp
    splunk = _output(yaml_cfg, "splunk")
    assert splunk["splunk_token"] == "${SPLUNK_HEC_TOKEN}"
    http = _output(yaml_cfg, "http")
    assert (http["host"], http["port"], http["uri"]) == ("127.0.0.1", "8514", "/ingest")
    assert http["format"] == "json_lines" and http["json_date_key"] == "false"
    assert http["header"] == "Authorization Bearer ${SECRETSIGHT_WATCH_TOKEN}"
