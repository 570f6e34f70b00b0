"""Helpers for the alerting tests: Debian's `amtool` and `promtool` (skipped with the reason
when missing), the generated alerting files, and the compiled Loki ruler rules whose label
sets are the real alerts Alertmanager routes. (LogQL parsing: support.logql.)"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from secretsight.compile import TargetOutput, compile_target
from secretsight.config import Config

REPO = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        package = {"amtool": "prometheus-alertmanager", "promtool": "prometheus"}[name]
        pytest.skip(f"{name} is not installed (apt-get install {package}; scripts/test.sh "
                    "installs it)")
    return path


def run(args: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


@cache
def compiled(target: str) -> TargetOutput:
    """The repo's rules compiled once per session with the default config."""
    return compile_target(target)


def alerting_files(config: Config | None = None) -> dict[str, str]:
    from secretsight.alerting.build import build_files

    return build_files(config or Config())


def write(files: dict[str, str], root: Path) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root


def loki_alerts() -> list[dict]:
    doc = yaml.safe_load(compiled("loki").files["loki/secretsight-rules.yaml"])
    return [rule for group in doc["groups"] for rule in group["rules"]]
