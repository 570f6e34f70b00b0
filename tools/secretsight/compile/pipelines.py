"""Target pipelines: pySigma processing pipelines kept as data in `sigma/pipelines/<target>.yml`,
run after the placeholder pipeline (priority 10) that fills the user's lists."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import ValueTransformation
from sigma.processing.transformations.state import SetStateTransformation
from sigma.types import SigmaBool, SigmaCasedString

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


@dataclass
class BooleanAsStringTransformation(ValueTransformation):
    """A boolean value becomes the string `true` / `false`: Loki's `| json` parser yields JSON
    booleans as those strings, and pySigma-backend-loki refuses boolean values
    (defect loki_boolean; `secretsight compile` handles it in its backend subclass)."""

    # pySigma applies the transformation to the values of the annotated type only.
    def apply_value(  # type: ignore[override]
        self, field: str | None, val: SigmaBool
    ) -> SigmaCasedString:
        # Cased: `| json` writes exactly `true` / `false`.
        return SigmaCasedString("true" if val.boolean else "false")


def _sigma_cli_items(target: str, vars_: dict[str, Any]) -> list[ProcessingItem]:
    """What the plain pySigma backend of `target` needs from a pipeline when used by sigma-cli;
    `secretsight compile` does the same in its own code (secretsight.compile.<target>)."""
    if target == "loki":
        from secretsight.compile.loki import (
            ArrayLabelParserTransformation,
            StringRegexTransformation,
        )

        return [
            ProcessingItem(BooleanAsStringTransformation(), identifier="secretsight_loki_booleans"),
            ProcessingItem(ArrayLabelParserTransformation(),
                           identifier="secretsight_loki_array_labels"),
            ProcessingItem(StringRegexTransformation(), identifier="secretsight_loki_string_regex"),
        ]
    if target == "elastic" and vars_.get("index"):
        # The ES|QL backend reads `from <index>` from the pipeline state (default `from *`);
        # the compiler writes the indices into its queries itself.
        return [ProcessingItem(SetStateTransformation("index", [str(i) for i in vars_["index"]]),
                               identifier="secretsight_elastic_esql_index")]
    return []


def sigma_cli_pipeline(target: str) -> ProcessingPipeline:
    """The target pipeline as sigma-cli users get it (`-p secretsight_<target>`): the YAML
    pipeline, then the items the plain backends need (see `_sigma_cli_items`)."""
    pipeline = target_pipeline(target)
    extra = _sigma_cli_items(target, dict(pipeline.vars))
    if not extra:
        return pipeline
    combined = pipeline + ProcessingPipeline(items=extra)  # `+` keeps neither name nor priority
    combined.name = pipeline.name
    combined.priority = pipeline.priority
    combined.allowed_backends = pipeline.allowed_backends
    return combined
