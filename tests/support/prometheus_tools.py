"""Debian's `amtool` and `promtool` for the alerting tests (skipped with the reason when
missing), and the generated alerting files written where the tools can read them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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


def alerting_files(config: Config | None = None) -> dict[str, str]:
    from secretsight.alerting.build import build_files

    return build_files(config or Config())


def write(files: dict[str, str], root: Path) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root
