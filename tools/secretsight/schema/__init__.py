"""The normalized event schema, loaded from `event.yml` (its one definition)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from secretsight import yamlio

_TYPES = {"keyword", "text", "ip", "long", "boolean", "date", "keyword[]", "object"}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    values: tuple[Any, ...] | None


@dataclass(frozen=True)
class Schema:
    version: int
    fields: dict[str, Field]
    datasets: dict[str, str]
    operations: dict[str, str]
    categories: dict[str, str]
    operation_map: dict[str, dict[str, str]]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.required]


@cache
def load() -> Schema:
    raw = yamlio.load(resources.files(__package__).joinpath("event.yml").read_text("utf-8"))
    fields = {}
    for name, spec in raw["fields"].items():
        if spec["type"] not in _TYPES:
            raise ValueError(f"schema field {name}: unknown type {spec['type']!r}")
        values = spec.get("values")
        fields[name] = Field(
            name=name,
            type=spec["type"],
            required=bool(spec.get("required", False)),
            description=" ".join(str(spec.get("description", "")).split()),
            values=tuple(values) if values is not None else None,
        )
    return Schema(
        version=raw["version"],
        fields=fields,
        datasets=raw["datasets"],
        operations=raw["operations"],
        categories=raw["categories"],
        operation_map=raw["operation_map"],
    )


def flatten(event: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested event -> {dotted.name: value}; lists are leaves."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _type_error(ftype: str, value: Any) -> str | None:
    if ftype in ("keyword", "text"):
        return None if isinstance(value, str) and value != "" else "a non-empty string"
    if ftype == "long":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "an integer"
    if ftype == "boolean":
        return None if isinstance(value, bool) else "a boolean"
    if ftype == "keyword[]":
        ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        return None if ok else "a list of non-empty strings"
    if ftype == "ip":
        if not isinstance(value, str):
            return "an IP address string"
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return "a valid IP address (no port, no brackets)"
        return None
    if ftype == "date":
        if not (isinstance(value, str) and value.endswith("Z") and "T" in value):
            return "an RFC 3339 UTC timestamp ending in Z"
        return None
    if ftype == "object":
        return None if isinstance(value, dict) else "an object"
    return f"unknown type {ftype}"


def validate(event: dict[str, Any]) -> list[str]:
    """Every way `event` departs from the schema; empty when it conforms."""
    schema = load()
    flat = flatten(event)
    problems = [f"missing required field {n}" for n in schema.required if n not in flat]
    for name, value in flat.items():
        spec = schema.fields.get(name)
        if spec is None:
            problems.append(f"field {name} is not in the schema")
            continue
        if value is None or value == "" or value == [] or value == {}:
            problems.append(f"field {name} is empty: omit it instead")
            continue
        err = _type_error(spec.type, value)
        if err:
            problems.append(f"field {name} must be {err}, got {value!r}")
        elif spec.values is not None and value not in spec.values:
            problems.append(f"field {name} must be one of {list(spec.values)}, got {value!r}")
    if flat.get("secretsight.category") == "secret":
        if "secret.operation" not in flat:
            problems.append("category secret needs secret.operation")
    return problems
