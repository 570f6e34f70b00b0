"""Fluent Bit -> Loki, end to end as far as it runs here (no fluent-bit or Loki binary): every
golden raw line through the real Lua normalizer on LuaJIT, shipped as the `loki` outputs of
fluent-bit.yaml / fluent-bit.conf ship it, then read as the compiled LogQL reads it.

The output is emulated from its source (plugins/out_loki/loki.c): the stream labels come from
`labels` (static `key=value`, or record accessors `$a['b']` / `key=$a['b']`); every record
accessor used in `labels`, `label_keys` or `structured_metadata` is REMOVED from the record
before the line is written (`remove_keys_derived`), as are `remove_keys`; `line_format json`
writes the rest as compact JSON.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from support.fluentbit_configs import both_formats, tag_matches
from support.golden_pairs import event_params
from support.lua_filters import filter_for

from secretsight.compile import compile_target
from secretsight.compile.pipelines import full_pipeline
from secretsight.compile.transformations import (
    DATASET_FIELD,
    SERVICE_DATASETS,
    rule_required_values,
)
from secretsight.config import Config
from secretsight.rules import load_rules

LABEL = Config().targets.loki.dataset_label
_RA = re.compile(r"\$([A-Za-z_]\w*)((?:\['[^']+'\])*)")


def _ra_path(text: str) -> list[str]:
    m = _RA.fullmatch(text.strip())
    assert m, text
    return [m.group(1), *re.findall(r"\['([^']+)'\]", m.group(2))]


def _get(record: dict[str, Any], path: list[str]) -> Any:
    for key in path:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def _remove(record: dict[str, Any], path: list[str]) -> None:
    parent = _get(record, path[:-1]) if len(path) > 1 else record
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def ship(output: dict[str, Any], record: dict[str, Any]) -> tuple[dict[str, str], str]:
    """(stream labels, line) of `record` through a loki output, as plugins/out_loki does."""
    record = json.loads(json.dumps(record))
    labels: dict[str, str] = {}
    removed: list[list[str]] = []
    for entry in [e.strip() for e in output.get("labels", "").split(",") if e.strip()]:
        key, _, value = entry.partition("=")
        if entry.startswith("$"):
            path = _ra_path(entry)
            removed.append(path)
            if _get(record, path) is not None:
                labels["_".join(path)] = str(_get(record, path))
        elif value.startswith("$"):
            path = _ra_path(value)
            removed.append(path)
            if _get(record, path) is not None:
                labels[key] = str(_get(record, path))
        else:
            labels[key] = value
    for prop in ("label_keys", "structured_metadata", "remove_keys"):
        for entry in [e.strip() for e in output.get(prop, "").split(",") if e.strip()]:
            removed.append(_ra_path(entry.partition("=")[2] or entry) if "$" in entry
                           else [entry])
    for path in removed:
        _remove(record, path)
    return labels, json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def json_labels(line: str) -> dict[str, str]:
    """What Loki's `| json` extracts: nested keys joined with `_`; arrays skipped."""
    out: dict[str, str] = {}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{prefix}_{k}" if prefix else k)
        elif isinstance(value, list):
            return
        elif isinstance(value, bool):
            out[re.sub(r"\W", "_", prefix)] = "true" if value else "false"
        else:
            out[re.sub(r"\W", "_", prefix)] = str(value)

    walk(json.loads(line), "")
    return out


def loki_outputs(cfg: dict[str, list[dict[str, Any]]], tag: str) -> list[dict[str, Any]]:
    return [o for o in cfg["outputs"] if o["name"] == "loki" and tag_matches(o["match"], tag)]


CONFIGS = both_formats()


@pytest.mark.parametrize("fmt", sorted(CONFIGS))
@pytest.mark.parametrize(("source", "raw"), event_params())
def test_loki_line_is_the_whole_normalized_event(fmt: str, source: str, raw: bytes) -> None:
    events = [r for r in filter_for(source).call(raw).records if "dead_letter" not in r
              and "skip" not in r]
    assert events
    (output,) = loki_outputs(CONFIGS[fmt], f"secretsight.{source}")
    for event in events:
        labels, line = ship(output, event)
        assert json.loads(line) == event  # nothing removed: labels and fields both arrive
        assert labels[LABEL] == event["event"]["dataset"]
        parsed = json_labels(line)
        assert parsed["event_dataset"] == event["event"]["dataset"]
        assert parsed["secretsight_category"] == event["secretsight"]["category"]


def test_the_emulation_removes_record_accessor_labels() -> None:
    """The old output (labels from $event['dataset'] and $secretsight['category']) lost both
    fields from the line: the emulation reproduces what the issue measured."""
    old = {"labels": "job=secretsight, dataset=$event['dataset'], "
                     "category=$secretsight['category']"}
    event = {"event": {"dataset": "vault.audit", "action": "read"},
             "secretsight": {"category": "secret"}}
    labels, line = ship(old, event)
    assert labels == {"job": "secretsight", "dataset": "vault.audit", "category": "secret"}
    assert json.loads(line) == {"event": {"action": "read"}, "secretsight": {}}


# --- what the compiled queries select, against what the Lua path ships -------------------------

@cache
def selections() -> dict[str, tuple[str, dict[str, frozenset[str]]]]:
    """Plain rule name -> (its stream selector and line filters as compiled, the values its
    condition requires), building blocks included."""
    out = {}
    pipeline = full_pipeline("loki", Config())
    for rule in load_rules(None, Config()).collection.rules:
        if not hasattr(rule, "detection") or not hasattr(rule, "logsource"):
            continue
        service = SERVICE_DATASETS.get(rule.logsource.service or "")
        # After the pipeline: placeholders (`%sensitive_namespaces%`) are expanded into the values
        # the line filters require, as in the compiled query.
        pipeline.apply(rule)
        required = dict(rule_required_values(rule))
        if service is not None:  # a per-source rule sees its source's events only
            required[DATASET_FIELD] = required.get(DATASET_FIELD, frozenset({service})) & {service}
        out[str(rule.name)] = (rule.custom_attributes["logsource_loki_selection"], required)
    return out


def _selects(selection: str, labels: dict[str, str], line: str) -> bool:
    m = re.match(r'\{(\w+)(=~?)"([^"]*)"\}', selection)
    assert m, selection
    label, op, value = m.groups()
    pattern = value.replace("\\\\", "\\")
    if labels.get(label) is None or not (
            labels[label] == value if op == "=" else re.fullmatch(pattern, labels[label])):
        return False
    return all(re.search(f, line) for f in re.findall(r"\|~ `([^`]*)`", selection))


def _satisfies(event: dict[str, Any], required: dict[str, frozenset[str]]) -> bool:
    for field, values in required.items():
        value = _get(event, field.split("."))
        if value is None or str(value).lower() not in {v.lower() for v in values}:
            return False
    return True


def test_every_selection_is_in_the_compiled_queries() -> None:
    text = "\n".join(q for qs in compile_target("loki").queries.values() for q in qs)
    for name, (selection, _) in selections().items():
        if name in compile_target("loki").queries or f"{selection} | json" in text:
            assert f"{selection} | json" in text, name


def test_shipped_events_pass_the_selection_of_every_rule_they_can_match() -> None:
    """Necessary conditions hold on the real shipped lines: an event with every value a rule
    requires is in the rule's stream and passes its line filters (otherwise the query would
    miss it before `| json`); an event from another dataset is not selected."""
    checked = rejected = 0
    for param in event_params():
        source, raw = param.values
        (output,) = loki_outputs(CONFIGS["yaml"], f"secretsight.{source}")
        for event in (r for r in filter_for(source).call(raw).records if "event" in r):
            labels, line = ship(output, event)
            for name, (selection, required) in selections().items():
                if _satisfies(event, required):
                    checked += 1
                    assert _selects(selection, labels, line), (name, param.id)
                elif not _selects(selection, labels, line):
                    rejected += 1
    assert checked > 50 and rejected > 50, (checked, rejected)
