"""docs/schema.md is generated from event.yml and dispositions.yml and must be up to date."""

from __future__ import annotations

from secretsight.schema import load
from secretsight.schema.docs import DEFAULT_OUT, render


def test_committed_schema_doc_is_up_to_date() -> None:
    assert DEFAULT_OUT.read_text("utf-8") == render(), (
        "docs/schema.md is stale: run `python -m secretsight.schema.docs`"
    )


def test_schema_doc_lists_every_field() -> None:
    text = render()
    for name in load().fields:
        assert f"| `{name}` |" in text
