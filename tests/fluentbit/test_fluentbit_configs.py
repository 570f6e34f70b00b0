"""fluent-bit.yaml and fluent-bit.conf describe the same pipeline, and that pipeline is sound.

No fluent-bit binary exists here: both formats are read into one shape by
support.fluentbit_configs.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.fluentbit_configs import (
    CLASSIC_CONFIG,
    SECTIONS,
    YAML_CONFIG,
    load_classic,
    load_yaml,
    tag_matches,
)
from support.lua_filters import FLUENTBIT_DIR, LuaFilter


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
            if f["name"] == "lua" and tag_matches(f["match"], inp["tag"])
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
        matched = [o["alias"] for o in outputs if tag_matches(o["match"], tag)]
        assert matched, f"{tag} reaches no output"
        assert not {
            "loki_vault_events",
            "loki_cloudtrail_events",
            "loki_kubernetes_events",
            "elasticsearch_events",
            "splunk_vault_events",
            "splunk_cloudtrail_events",
            "splunk_kubernetes_events",
            "secretsight_watch",
        } & set(matched), f"{tag} would reach the event outputs"
    # No Lua normalizer matches a re-emitted tag (it would be normalized twice).
    for f in yaml_cfg["filters"]:
        if f["name"] == "lua":
            assert not tag_matches(f["match"], "secretsight_dead_letter.vault")


def _output(cfg: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    found = [o for o in cfg["outputs"] if o["name"] == name and o["match"] == "secretsight.*"]
    assert len(found) == 1, name
    return found[0]


def test_event_outputs(yaml_cfg):
    # Loki and Splunk: one output per source (tests/fluentbit/test_loki_output.py,
    # test_splunk_output.py)
    es = _output(yaml_cfg, "es")
    assert es["time_key"] != "@timestamp"  # events carry their own @timestamp
    http = _output(yaml_cfg, "http")
    assert (http["host"], http["port"], http["uri"]) == ("127.0.0.1", "8514", "/ingest")
    assert http["format"] == "json_lines" and http["json_date_key"] == "false"
    assert http["header"] == "Authorization Bearer ${SECRETSIGHT_WATCH_TOKEN}"
