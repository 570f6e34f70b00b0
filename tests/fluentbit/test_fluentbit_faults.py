"""Fluent Bit configs (issue 12): every config routes dead letters and skips to an output of
their own (none is dropped by a filter), and CloudTrail Records files reach the normalizer only
in the shape tail can read: newline-terminated (tail holds back an unterminated last line until
a newline comes, which for a finished S3 object is never). README "CloudTrail delivery" gives
the recipe tested here."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.fluentbit_configs import load_classic, load_yaml, tag_matches
from support.lua_filters import FLUENTBIT_DIR, LuaFilter, normalize

CONFIGS = sorted([*FLUENTBIT_DIR.glob("*.yaml"), *FLUENTBIT_DIR.glob("*.conf")])
EVENT_OUTPUT_MATCH = "secretsight.*"


def _load(path: Path) -> dict[str, list[dict[str, Any]]]:
    return load_yaml(path) if path.suffix == ".yaml" else load_classic(path)


def _sources(cfg: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The source part of each normalized input's tag (`secretsight.vault` -> `vault`)."""
    return [i["tag"].split(".", 1)[1] for i in cfg["inputs"]
            if i["tag"].startswith("secretsight.") and i["tag"] != "secretsight.fluentbit"]


@pytest.mark.parametrize("kind", ["dead_letter", "skip"])
@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_routes_dead_letters_and_skips(path: Path, kind: str) -> None:
    cfg = _load(path)
    for f in cfg["filters"]:
        if f["name"] == "grep":
            excluded = f.get("exclude") or []
            excluded = excluded if isinstance(excluded, list) else [excluded]
            assert not any(e.startswith(f"${kind} ") for e in excluded), \
                f"{path.name}: filter {f.get('alias')} drops every {kind}"
    rules = [f["rule"] for f in cfg["filters"] if f["name"] == "rewrite_tag"]
    assert f"${kind} ^.+$ secretsight_{kind}.$TAG[1] false" in rules, path.name
    for source in _sources(cfg):
        tag = f"secretsight_{kind}.{source}"
        outs = [o for o in cfg["outputs"] if tag_matches(o["match"], tag)]
        assert outs, f"{path.name}: {tag} reaches no output"
        assert all(o["match"] != EVENT_OUTPUT_MATCH for o in outs)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_long_lines_are_dead_letters_too(path: Path) -> None:
    """skip_long_lines drops a line over buffer_max_size with only a warning in Fluent Bit's
    own log: every config reads that log back so the warning becomes a line_too_long dead
    letter (long_lines.lua)."""
    cfg = _load(path)
    service = cfg["service"][0]
    self_inputs = [i for i in cfg["inputs"] if i["tag"] == "secretsight.fluentbit"]
    assert len(self_inputs) == 1 and self_inputs[0]["path"] == service["log_file"]
    assert any(f["name"] == "lua" and f["script"] == "long_lines.lua" for f in cfg["filters"])


def _tail_lines(data: bytes) -> list[bytes]:
    """What Fluent Bit's tail hands on from a file that is not appended to any more: every
    newline-terminated line; an unterminated last line waits for a newline forever."""
    return data.split(b"\n")[:-1]


RECIPE = FLUENTBIT_DIR / "cloudtrail-deliver.sh"


@pytest.fixture
def s3_object(tmp_path: Path) -> tuple[Path, list[dict]]:
    """A CloudTrail S3 object as AWS writes it: gzipped `{"Records":[...]}`, no final newline."""
    records = [{"eventVersion": "1.08", "eventTime": f"2026-01-05T10:00:0{i}Z",
                "eventSource": "secretsmanager.amazonaws.com", "eventName": "GetSecretValue",
                "awsRegion": "us-east-1", "sourceIPAddress": "10.0.0.5",
                "userAgent": "aws-cli/2", "eventID": f"e{i}", "eventType": "AwsApiCall",
                "recipientAccountId": "111122223333",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/a",
                                 "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE",
                                 "userName": "a"},
                "requestParameters": {"secretId": f"prod/db{i}"}, "responseElements": None}
               for i in range(3)]
    obj = tmp_path / "111122223333_CloudTrail_us-east-1_20260105T1000Z_abc.json.gz"
    obj.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    return obj, records


def test_an_s3_object_as_is_never_reaches_the_normalizer(s3_object) -> None:
    obj, _ = s3_object
    assert _tail_lines(gzip.decompress(obj.read_bytes())) == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_the_delivery_recipe_makes_every_record_readable(tmp_path: Path, s3_object) -> None:
    obj, records = s3_object
    out_dir = tmp_path / "cloudtrail"
    out_dir.mkdir()
    subprocess.run(["bash", str(RECIPE), str(obj), str(out_dir)], check=True, timeout=60)
    (delivered,) = out_dir.iterdir()  # the partial file was renamed into place
    assert delivered.name.endswith(".json")
    lines = _tail_lines(delivered.read_bytes())
    assert len(lines) == 1
    lua = LuaFilter("cloudtrail")
    items = normalize(lua, lines[0])
    ids = sorted(i["event"]["event"]["id"] for i in items if "event" in i)
    assert ids == sorted(r["eventID"] for r in records)
