"""sigma/pipelines/*.yml are pySigma pipelines kept as data: named, prioritised, restricted to
their backends, an id on every item, and loadable by pySigma."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from secretsight import schema
from secretsight.compile.pipelines import pipelines_dir, target_pipeline

FILES = sorted(pipelines_dir().glob("*.yml"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_pipeline_is_data_with_ids(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert data["name"] and isinstance(data["priority"], int) and data["priority"] > 10
    assert data["allowed_backends"]
    items = data.get("transformations", [])
    ids = [item.get("id") for item in items]
    assert all(ids), f"every item needs an id: {ids}"
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("target", ["loki", "elastic", "splunk"])
def test_pipeline_loads(target: str) -> None:
    pipeline = target_pipeline(target)
    assert pipeline.priority == 20


def test_loki_labels_cover_schema() -> None:
    """Every schema field is mapped to the label `| json` gives it (dots -> `_`)."""
    data = yaml.safe_load((pipelines_dir() / "loki.yml").read_text())
    mapping = next(i["mapping"] for i in data["transformations"]
                   if i["id"] == "secretsight_loki_json_labels")
    fields = schema.load().fields
    assert set(mapping) == set(fields)
    for name, label in mapping.items():
        assert label == re.sub(r"[^A-Za-z0-9_]", "_", name), name


def test_splunk_maps_every_array_field() -> None:
    data = yaml.safe_load((pipelines_dir() / "splunk.yml").read_text())
    mapping = next(i["mapping"] for i in data["transformations"]
                   if i["id"] == "secretsight_splunk_json_arrays")
    arrays = {n for n, f in schema.load().fields.items() if f.type.endswith("[]")}
    assert mapping == {a: f"{a}{{}}" for a in arrays}
