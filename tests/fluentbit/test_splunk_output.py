"""Fluent Bit -> Splunk HEC: every golden raw line through the real Lua normalizer on LuaJIT,
then through the `splunk` outputs of fluent-bit.yaml / fluent-bit.conf that match its tag. Each
event must reach exactly one, under its own dataset's sourcetype and the index the Splunk app
searches (`targets.splunk` in the config): the app's per-dataset macros and audit_gap tell the
sources apart by sourcetype, with no `shared_sourcetype` configured.

Per the splunk output's documentation: `event_sourcetype` / `event_index` set the HEC metadata
of every record; `event_sourcetype_key` / `event_index_key` (a record's value) would take
precedence, so they must be absent; `splunk_send_raw` off nests the record under `event`."""

from __future__ import annotations

from typing import Any

import pytest
from support.fluentbit_configs import both_formats, tag_matches
from support.golden_pairs import event_params
from support.lua_filters import filter_for

from secretsight import schema
from secretsight.compile.splunk_app import dataset_macro, macros
from secretsight.config import Config

TARGET = Config().targets.splunk
CONFIGS = both_formats()


def splunk_outputs(cfg: dict[str, list[dict[str, Any]]], tag: str) -> list[dict[str, Any]]:
    return [o for o in cfg["outputs"] if o["name"] == "splunk" and tag_matches(o["match"], tag)]


@pytest.mark.parametrize("fmt", sorted(CONFIGS))
@pytest.mark.parametrize(("source", "raw"), event_params())
def test_each_event_gets_its_datasets_sourcetype(fmt: str, source: str, raw: bytes) -> None:
    events = [r for r in filter_for(source).call(raw).records if "dead_letter" not in r
              and "skip" not in r]
    assert events
    (output,) = splunk_outputs(CONFIGS[fmt], f"secretsight.{source}")
    assert output.get("splunk_send_raw", "false") == "false"
    assert "event_sourcetype_key" not in output and "event_index_key" not in output
    assert output["splunk_token"] == "${SPLUNK_HEC_TOKEN}"
    for event in events:
        assert output["event_sourcetype"] == TARGET.sourcetype(event["event"]["dataset"])
        assert output["event_index"] == TARGET.index


def test_every_dataset_macro_finds_its_source_by_sourcetype_alone() -> None:
    assert TARGET.shared_sourcetype is None
    sent = {o["event_sourcetype"] for o in CONFIGS["yaml"]["outputs"] if o["name"] == "splunk"}
    datasets = sorted(schema.load().datasets)
    assert sent == {TARGET.sourcetype(d) for d in datasets}
    app = macros(Config())
    for d in datasets:
        assert app[dataset_macro(d)]["definition"] == (
            f'`secretsight_index` sourcetype="{TARGET.sourcetype(d)}"')
