"""The SecretSight Sigma rules: loading them with the user's tunables applied, and the
placeholder pipeline every backend runs first.

Rules live in `sigma/rules/<source>/<name>.yml` (source: vault, cloudtrail, kubernetes, cross).
A file holds one alerting rule, named like the file and last; a correlation's file first holds
the building blocks it references (YAML documents separated by `---`, which pySigma and
sigma-cli load as one collection in file order), so `sigma convert <dir>` works whatever order the file system lists
the files in (see `loader.sigma_cli_layout_problems`).
Beside the SigmaHQ attributes every rule carries custom top-level attributes:

* `name` (Sigma's own rule name, unique; = file stem for a file's last rule): correlations and
  scenarios reference it;
* `anomaly`: one of `secretsight.findings.ANOMALY_CLASSES`;
* `config_threshold` (optional): where a number in the rule comes from in the user config, so
  tuning never means editing a rule. Two forms:
  - a dotted Config key (correlations): a `CountWindow` / `DistinctWindow` sets the value of the
    correlation condition's one operator (`count` / `distinct`) and the timespan (`window`); a
    bare duration sets the timespan; a bare number sets the condition value;
  - a mapping `{target: dotted Config key}` with targets `condition`, `timespan` or
    `detection.<identifier>.<field|modifiers>` (a plain rule's numeric comparison; durations
    become seconds), e.g. `{"detection.selection.vault.created_token.ttl|gt":
    thresholds.long_ttl_token_max}`.
  The YAML keeps the default values (equal to `Config()`), so each file is valid Sigma alone.
* `embedded: false` (optional): a target-only rule the embedded engine (`scan`) skips because
  a stateful detector reports that anomaly (admin_off_hours).

Lists (allowlists, internal networks, admin identities, decoy paths, user agents, sensitive
namespaces) come in through placeholders `%name%` with the `|expand` modifier; `PLACEHOLDERS` says
which Config attribute feeds each one, and `placeholder_pipeline(config)` substitutes them.

CIDR lists: pySigma cannot combine `|expand` with `|cidr` (the `cidr` modifier parses its value at
rule-load time, before any placeholder is replaced), so a rule writes
`source.ip|expand: '%internal_networks%'` and the pipeline replaces the placeholder by
`SigmaCIDRExpression`s itself (`CIDRPlaceholderTransformation`); every backend then renders its
own CIDR test (SQLite expands to prefix patterns, Loki/Elastic/Splunk have native forms).

Modules: `model` (RuleMeta, RuleSet, RULES_DIR), `loader` (files -> RuleSet), `tuning` (config
values into thresholds and descriptions), `placeholders` (the list placeholders and their
pipeline), `introspect` (the fields and placeholders a rule names).
"""

from __future__ import annotations

from secretsight.rules.introspect import rule_fields, rule_placeholders
from secretsight.rules.loader import (
    load_rules,
    rule_documents,
    rule_files,
    sigma_cli_layout_problems,
    split_documents,
)
from secretsight.rules.model import RULES_DIR, SERVICES, SOURCES, RuleMeta, RuleSet
from secretsight.rules.placeholders import (
    CIDR_PLACEHOLDERS,
    EMPTY_LIST_SENTINEL,
    PIPELINE_PRIORITY,
    PLACEHOLDERS,
    CIDRPlaceholderTransformation,
    placeholder_pipeline,
    placeholder_values,
)
from secretsight.rules.tuning import apply_thresholds, config_value, render_description

__all__ = [
    "CIDR_PLACEHOLDERS", "EMPTY_LIST_SENTINEL", "PIPELINE_PRIORITY", "PLACEHOLDERS", "RULES_DIR",
    "SERVICES", "SOURCES", "CIDRPlaceholderTransformation", "RuleMeta", "RuleSet",
    "apply_thresholds", "config_value", "load_rules", "placeholder_pipeline",
    "placeholder_values", "render_description", "rule_documents", "rule_fields", "rule_files",
    "rule_placeholders", "sigma_cli_layout_problems", "split_documents",
]
