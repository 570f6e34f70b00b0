"""YAML in: PyYAML's safe loading, parsed by libyaml when the installed PyYAML has it.

`yaml.safe_load` scans and parses in pure Python, and every command starts by reading the
rules (about sixty documents), the schema, the anomaly catalogue and the dead-letter codes:
most of the YAML time of a short `scan`. libyaml's parser (`CSafeLoader`) feeds the same
`SafeConstructor`, so the objects are the same (tests/core/test_yamlio.py compares both on
every YAML file the package reads), and its errors are `yaml.YAMLError`s with a
`problem_mark` as before. Without libyaml this is `yaml.safe_load`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """`yaml.safe_load(text)`, through libyaml when available."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)


def load_all(text: str) -> Iterator[Any]:
    """`yaml.safe_load_all(text)`, through libyaml when available."""
    return yaml.load_all(text, Loader=Loader)  # noqa: S506 - a safe loader
