"""The Elasticsearch templates the Elastic target ships: every schema field mapped with its
type, the data streams and indices the Kibana rules read covered, and every field any Kibana
rule reads (Lucene, EQL, ES|QL, new_terms and threshold fields) mapped, so no rule depends on
dynamic mapping."""

from __future__ import annotations

import json
import re

import pytest
from luqum.parser import parser as lucene_parser
from luqum.tree import SearchField
from support.compiled_rules import compiled, ndjson_rules

from secretsight import schema
from secretsight.compile.elastic_template import TEMPLATE_DIR, field_mappings
from secretsight.config import Config

KIBANA = ndjson_rules()
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_FIELD = re.compile(r"(?<![\w.@])(@timestamp|[A-Za-z_][\w]*(?:\.[\w@]+)+)(?![\w(])")


def _template(name: str) -> dict:
    return json.loads(compiled("elastic").files[f"{TEMPLATE_DIR}/{name}"])


def _leaves(props: dict, prefix: str = "") -> dict[str, dict]:
    out = {}
    for key, value in props.items():
        if "properties" in value:
            out.update(_leaves(value["properties"], f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def mapped_fields() -> dict[str, dict]:
    component = _template("component-secretsight-mappings.json")
    return _leaves(component["template"]["mappings"]["properties"])


def test_every_schema_field_is_mapped_with_its_type() -> None:
    leaves = mapped_fields()
    fields = schema.load().fields
    assert set(leaves) == set(fields)
    for name, f in fields.items():
        assert leaves[name]["type"], name
        if f.type in ("ip", "long", "boolean", "date"):
            assert leaves[name]["type"] == f.type, name


def test_index_templates_cover_what_the_rules_read() -> None:
    el = Config().targets.elastic
    streams = _template("index-secretsight-data-streams.json")
    assert streams["index_patterns"] == el.data_streams and streams["data_stream"] == {}
    assert streams["priority"] > 100  # above the built-in logs-*-* template
    assert "secretsight-mappings" in streams["composed_of"]
    plain = _template("index-secretsight-indices.json")
    assert plain["index_patterns"] == el.indices and "data_stream" not in plain
    for doc in KIBANA:
        read = doc.get("index") or re.match(r"from ([^\s]+)", doc["query"]).group(1).split(",")
        assert read == el.read_from, doc["name"]


def rule_fields(doc: dict) -> set[str]:
    """The fields a Kibana rule reads."""
    if doc["language"] == "lucene":
        tree = lucene_parser.parse(doc["query"])
        found = {n.name.replace("\\", "") for n in _walk(tree) if isinstance(n, SearchField)}
        # `_exists_:field` (Sigma `|exists`) reads `field`, not a field named _exists_
        if "_exists_" in found:
            found.discard("_exists_")
            found |= {m.replace("\\", "") for m in re.findall(r"_exists_:([\w.\\]+)", doc["query"])}
    else:
        found = set(_FIELD.findall(_QUOTED.sub('""', doc["query"])))
    found |= set(doc.get("new_terms_fields", []))
    found |= set(doc.get("threshold", {}).get("field", []))
    return found


def _walk(node):  # noqa: ANN001, ANN202 - luqum nodes
    yield node
    for child in node.children:
        yield from _walk(child)


@pytest.mark.parametrize("doc", KIBANA, ids=[d["meta"]["secretsight"]["rule_name"] for d in KIBANA])
def test_every_field_a_rule_reads_is_mapped(doc: dict) -> None:
    fields = rule_fields(doc)
    assert fields, "no field found: the extraction is broken"
    assert fields - set(field_mappings()) == set()


def test_field_extraction_sees_an_unmapped_field() -> None:
    doc = {"language": "esql", "query": 'from x | where made.up == "a.b" | keep made.up'}
    assert rule_fields(doc) == {"made.up"}
    doc = {"language": "lucene", "query": "made.up:x AND secret.path:\\*"}
    assert rule_fields(doc) == {"made.up", "secret.path"}
