"""The Elasticsearch templates the Elastic target ships beside the Kibana rules: one component
template with the mappings of every field of the normalized event (generated from
schema/event.yml, each field with its type), and two index templates using it: one for the
data streams the shippers write (Vector: `logs-<event.dataset>-secretsight`) and one for the
plain indices (Fluent Bit's es output), so no rule depends on dynamic mapping.

Names come from `config.targets.elastic`; install order: the component template, then the
index templates (docs/elastic.md).
"""

from __future__ import annotations

import json
from typing import Any

from secretsight import schema
from secretsight.config import Config
from secretsight.errors import SecretSightError

TEMPLATE_DIR = "elastic/templates"
# Above the built-in `logs` template (priority 100 on logs-*-*), so our data streams use ours;
# it composes the built-in logs@ component templates where they exist (8.x).
PRIORITY = 200
_LOGS_COMPONENTS = ["logs@mappings", "logs@settings"]

# Schema type -> Elasticsearch mapping. `text` fields are matched as whole values with globs by
# the rules (`*permission denied*`), so keyword with a text sub-field for full-text search (the
# ECS convention for such fields); `object` is free-form: flattened keeps its keys searchable
# without a mapping per key.
_TYPES: dict[str, dict[str, Any]] = {
    "keyword": {"type": "keyword", "ignore_above": 1024},
    "keyword[]": {"type": "keyword", "ignore_above": 1024},
    "text": {"type": "keyword", "ignore_above": 8191,
             "fields": {"text": {"type": "match_only_text"}}},
    "ip": {"type": "ip"},
    "long": {"type": "long"},
    "boolean": {"type": "boolean"},
    "date": {"type": "date"},
    "object": {"type": "flattened"},
}


def field_mappings() -> dict[str, dict[str, Any]]:
    """Dotted field name -> its mapping, for every schema field."""
    out = {}
    for name, f in sorted(schema.load().fields.items()):
        if f.type not in _TYPES:
            raise SecretSightError(f"schema field {name}: no Elasticsearch mapping for type "
                                   f"{f.type!r}")
        out[name] = _TYPES[f.type]
    return out


def properties() -> dict[str, Any]:
    """The mappings' `properties` tree (dotted names as nested objects)."""
    root: dict[str, Any] = {}
    for name, mapping in field_mappings().items():
        node = root
        parts = name.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {"properties": {}})
            if "properties" not in child:
                raise SecretSightError(f"schema field {name}: {part} is a field and an object")
            node = child["properties"]
        if parts[-1] in node:
            raise SecretSightError(f"schema field {name} is also an object")
        node[parts[-1]] = dict(mapping)
    return root


def component_name(config: Config) -> str:
    return f"{config.targets.elastic.template_name}-mappings"


def templates(config: Config) -> dict[str, dict[str, Any]]:
    """File name (under TEMPLATE_DIR) -> template body."""
    el = config.targets.elastic
    component = component_name(config)
    meta = {"managed_by": "secretsight", "schema_version": schema.load().version}
    out: dict[str, dict[str, Any]] = {
        f"component-{component}.json": {
            "template": {"mappings": {"dynamic": True, "properties": properties()}},
            "_meta": meta,
        },
        f"index-{el.template_name}-data-streams.json": {
            "index_patterns": list(el.data_streams),
            "data_stream": {},
            "priority": PRIORITY,
            "composed_of": [*_LOGS_COMPONENTS, component],
            "ignore_missing_component_templates": list(_LOGS_COMPONENTS),
            "_meta": meta,
        },
    }
    if el.indices:
        out[f"index-{el.template_name}-indices.json"] = {
            "index_patterns": list(el.indices),
            "priority": PRIORITY,
            "composed_of": [component],
            "_meta": meta,
        }
    return out


def template_files(config: Config) -> dict[str, str]:
    # Indented: a reader compares them with what `GET _index_template/...` shows.
    return {f"{TEMPLATE_DIR}/{name}": json.dumps(body, indent=2, sort_keys=True) + "\n"
            for name, body in templates(config).items()}
