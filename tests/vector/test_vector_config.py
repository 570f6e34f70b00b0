"""vector/vector.yaml holds together without a `vector` binary: every input names a component
(or a named output of one), every remap program file exists, every inline VRL compiles, and
every source's line reaches a sink. The program-file and inline-VRL checks also cover the other
example configs in vector/ (e.g. watch-http-sink.yaml)."""

from __future__ import annotations

import re

import pytest
import yaml
from support.vrl_programs import VECTOR_DIR
from vrl_python import VRLRuntime

from secretsight import schema
from secretsight.config import Config

CONFIG = yaml.safe_load((VECTOR_DIR / "vector.yaml").read_text("utf-8"))
SOURCES = CONFIG["sources"]
TRANSFORMS = CONFIG["transforms"]
SINKS = CONFIG["sinks"]
ENV_DEFAULT = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")


def _outputs(name: str, spec: dict) -> set[str]:
    """The ids other components can name as input."""
    if spec["type"] == "route":
        return {f"{name}.{route}" for route in spec["route"]}
    if spec["type"] == "remap" and spec.get("reroute_dropped"):
        return {name, f"{name}.dropped"}
    return {name}


AVAILABLE = set(SOURCES) | {o for n, s in TRANSFORMS.items() for o in _outputs(n, s)}
CONSUMERS = {**TRANSFORMS, **SINKS}


@pytest.mark.parametrize("name", sorted(CONSUMERS))
def test_inputs_exist(name):
    assert set(CONSUMERS[name]["inputs"]) <= AVAILABLE


EXAMPLES = {
    path.name: yaml.safe_load(path.read_text("utf-8"))
    for path in sorted(VECTOR_DIR.glob("*.yaml"))
    if path.name != "tests.yaml"
}
ALL_TRANSFORMS = {
    f"{config}:{name}": spec
    for config, content in EXAMPLES.items()
    for name, spec in content.get("transforms", {}).items()
}


@pytest.mark.parametrize("name", sorted(n for n, s in ALL_TRANSFORMS.items() if "file" in s))
def test_remap_program_file_exists(name):
    path = ENV_DEFAULT.sub(r"\1", ALL_TRANSFORMS[name]["file"])
    assert (VECTOR_DIR.parent / path).is_file(), path


def _inline_vrl() -> list[tuple[str, str]]:
    found = []
    for name, spec in ALL_TRANSFORMS.items():
        if "source" in spec:
            found.append((name, spec["source"]))
        if spec["type"] == "filter":
            found.append((name, spec["condition"]))
        for route, condition in spec.get("route", {}).items():
            found.append((f"{name}.{route}", condition))
    return found


@pytest.mark.parametrize(("name", "source"), _inline_vrl(), ids=[n for n, _ in _inline_vrl()])
def test_inline_vrl_compiles(name, source):
    diagnostic = VRLRuntime.check_syntax(source)
    assert diagnostic is None, diagnostic.formatted_message


def test_every_output_is_consumed():
    consumed = {i for spec in CONSUMERS.values() for i in spec["inputs"]}
    assert AVAILABLE - consumed == set()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_reaches_a_sink(source):
    downstream = {source}
    changed = True
    while changed:
        changed = False
        for name, spec in CONSUMERS.items():
            fed = {i.split(".")[0] for i in spec["inputs"]}
            if name not in downstream and fed & downstream:
                downstream.add(name)
                changed = True
    assert downstream & set(SINKS)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"dead_letter": "malformed_json"}, "dead_letter"),
        ({"skip": "empty_line"}, "skip"),
        ({"event": {"id": "x"}}, "event"),
    ],
    ids=["dead_letter", "skip", "event"],
)
def test_dispositions_route_sends_each_item_one_way(item, expected):
    runtime = VRLRuntime()
    route = TRANSFORMS["dispositions"]["route"]
    matched = [r for r, cond in route.items() if runtime.execute(cond, item).runtime_result]
    assert matched == [expected]


def _render(template: str, event: dict) -> str:
    """A Vector field template (`{{ a.b }}`) rendered against an event."""
    def field(m: re.Match) -> str:
        value = event
        for key in m.group(1).split("."):
            value = value[key]
        return str(value)
    return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", field, template)


@pytest.mark.parametrize("dataset", sorted(schema.load().datasets))
def test_sinks_name_each_dataset_as_the_compiled_targets_search_it(dataset):
    """The Loki stream and the Splunk sourcetype of an event are its dataset's, as the config's
    `targets:` names them (the LogQL selector, the Splunk app's per-dataset macros and
    audit_gap); Loki gets no other label (an unused label only multiplies streams)."""
    event = {"event": {"dataset": dataset}, "secretsight": {"category": "secret"}}
    targets = Config().targets
    loki = {k: _render(v, event) for k, v in SINKS["loki"]["labels"].items()}
    assert loki == {targets.loki.dataset_label: dataset}
    splunk = SINKS["splunk"]
    assert _render(splunk["sourcetype"], event) == targets.splunk.sourcetype(dataset)
    assert splunk["index"] == targets.splunk.index
