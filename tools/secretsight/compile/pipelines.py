"""Target pipelines: pySigma processing pipelines kept as data in `sigma/pipelines/<target>.yml`
(field names, parser), run after the placeholder pipeline (priority 10) that fills the user's
lists, plus the items built from the config's `targets:` section (stream labels, index), so a
renamed label or index reaches every query.

Imports no target module: the targets import this one.
"""

from __future__ import annotations

import os
from pathlib import Path

from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    QueryExpressionPlaceholderTransformation,
)
from sigma.processing.transformations.state import SetStateTransformation

from secretsight.compile.splunk_app import LIST_MACRO_PREFIX
from secretsight.compile.transformations import (
    ArrayLabelParserTransformation,
    BooleanAsStringTransformation,
    LokiStreamSelectionTransformation,
    StringRegexTransformation,
)
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


def config_items(target: str, config: Config) -> list[ProcessingItem]:
    """The pipeline items that come from `config.targets` (for Splunk: the index condition
    sigma-cli users need; `compile` selects events through the app's macros instead)."""
    if target == "loki":
        return [ProcessingItem(
            LokiStreamSelectionTransformation(config.targets.loki.dataset_label),
            identifier="secretsight_loki_stream_selection")]
    if target == "splunk":
        return [ProcessingItem(AddConditionTransformation({"index": config.targets.splunk.index}),
                               identifier="secretsight_splunk_index")]
    return []


def splunk_list_macros() -> ProcessingPipeline:
    """Config lists as calls of the Splunk app's list macros (`secretsight_list_<name>(field)`,
    defined in macros.conf from the config), so the lists are tuned in one place."""
    return ProcessingPipeline(items=[ProcessingItem(
        QueryExpressionPlaceholderTransformation(expression=f"`{LIST_MACRO_PREFIX}{{id}}({{field}})`"),
        identifier="secretsight_splunk_list_macros")])


def full_pipeline(target: str, config: Config) -> ProcessingPipeline:
    """Placeholders first, then the target's stream selection, field names and parser."""
    base = target_pipeline(target)
    if target == "splunk":
        # Before the placeholder pipeline, which then finds no placeholder left.
        return splunk_list_macros() + placeholder_pipeline(config) + base
    items = config_items(target, config)
    if not items:
        return placeholder_pipeline(config) + base
    return placeholder_pipeline(config) + ProcessingPipeline(items=items) + base


def _sigma_cli_items(target: str, config: Config) -> list[ProcessingItem]:
    """What the plain pySigma backend of `target` needs from a pipeline when used by sigma-cli;
    `secretsight compile` does the same in its backend subclasses."""
    if target == "loki":
        return [
            ProcessingItem(BooleanAsStringTransformation(), identifier="secretsight_loki_booleans"),
            ProcessingItem(ArrayLabelParserTransformation(),
                           identifier="secretsight_loki_array_labels"),
            ProcessingItem(StringRegexTransformation(), identifier="secretsight_loki_string_regex"),
        ]
    if target == "elastic":
        # The ES|QL backend reads `from <index>` from the pipeline state (default `from *`);
        # the compiler writes the indices into its queries itself.
        return [ProcessingItem(SetStateTransformation("index", config.targets.elastic.read_from),
                               identifier="secretsight_elastic_esql_index")]
    return []


def sigma_cli_pipeline(target: str, config: Config | None = None) -> ProcessingPipeline:
    """The target pipeline as sigma-cli users get it (`-p secretsight_<target>`): the config's
    items, the YAML pipeline, then what the plain backends need (see `_sigma_cli_items`)."""
    config = config or Config()
    pipeline = target_pipeline(target)
    combined = (ProcessingPipeline(items=config_items(target, config)) + pipeline
                + ProcessingPipeline(items=_sigma_cli_items(target, config)))
    # `+` keeps neither name nor priority
    combined.name = pipeline.name
    combined.priority = pipeline.priority
    combined.allowed_backends = pipeline.allowed_backends
    return combined
