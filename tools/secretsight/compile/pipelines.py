"""Target pipelines: pySigma processing pipelines kept as data in `sigma/pipelines/<target>.yml`,
run after the placeholder pipeline (priority 10) that fills the user's lists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline

from secretsight.config import Config
from secretsight.errors import SecretSightError
from secretsight.rules import placeholder_pipeline


def pipelines_dir() -> Path:
    env = os.environ.get("SECRETSIGHT_PIPELINES")
    if env:
        return Path(env)
    # Repo layout: tools/secretsight/compile/pipelines.py -> <repo>/sigma/pipelines
    return Path(__file__).resolve().parents[3] / "sigma" / "pipelines"


def pipeline_path(target: str) -> Path:
    return pipelines_dir() / f"{target}.yml"


def target_pipeline(target: str) -> ProcessingPipeline:
    """The pySigma pipeline of `target` (loki, elastic, splunk), loaded from its YAML."""
    path = pipeline_path(target)
    try:
        return ProcessingPipeline.from_yaml(path.read_text("utf-8"))
    except OSError as exc:
        raise SecretSightError(f"cannot read target pipeline: {exc}", file=str(path)) from exc
    except (SigmaError, ValueError, TypeError, KeyError) as exc:
        raise SecretSightError(f"invalid target pipeline: {exc}", file=str(path)) from exc


def target_vars(target: str) -> dict[str, Any]:
    return dict(target_pipeline(target).vars)


def full_pipeline(target: str, config: Config) -> ProcessingPipeline:
    """Placeholders first, then the target's field names, parser and stream selection."""
    return placeholder_pipeline(config) + target_pipeline(target)
