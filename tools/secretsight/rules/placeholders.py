"""Lists from the user config (allowlists, internal networks, admin identities, ...) enter rules
through placeholders `%name%` with `|expand`: `PLACEHOLDERS` says which config key feeds each,
`placeholder_pipeline(config)` substitutes them (CIDR lists through
`CIDRPlaceholderTransformation`, since pySigma cannot chain `|expand` with `|cidr`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ValueListPlaceholderTransformation
from sigma.processing.transformations.placeholder import BasePlaceholderTransformation
from sigma.types import Placeholder, SigmaCIDRExpression, SigmaString, SigmaType

from secretsight.config import Config
from secretsight.rules.tuning import config_value

# Placeholder name -> dotted Config attribute. Defined once; rules use `%name%` with `|expand`.
PLACEHOLDERS: dict[str, str] = {
    "internal_networks": "internal_networks",
    "admin_vault_policies": "admin_identities.vault_policies",
    "admin_aws_arns": "admin_identities.aws_arns",
    "admin_kubernetes_groups": "admin_identities.kubernetes_groups",
    "decoy_paths": "decoy_paths",
    "suspicious_user_agents": "suspicious_user_agents",
    "sensitive_namespaces": "sensitive_namespaces",
    "allow_bulk_read": "allowlists.bulk_read",
    "allow_path_diversity": "allowlists.path_diversity",
    "allow_namespace_enumeration": "allowlists.namespace_enumeration",
    "allow_workload_identity_read": "allowlists.workload_identity_read",
    "allow_secret_destruction": "allowlists.secret_destruction",
    "allow_suspicious_user_agent": "allowlists.suspicious_user_agent",
    "allow_denied_burst": "allowlists.denied_burst",
    "allow_serviceaccount_token_creation": "allowlists.serviceaccount_token_creation",
    "allow_human_secret_write": "allowlists.human_secret_write",
    "allow_multi_region_read": "allowlists.multi_region_read",
    "system_identities": "system_identities.kubernetes",
}
# Placeholders whose values are networks: replaced by CIDR expressions, not strings.
CIDR_PLACEHOLDERS: frozenset[str] = frozenset({"internal_networks"})

# pySigma refuses an empty value list, and "no allowlisted identity" must still be valid in every
# target: an empty list becomes this one value, which no identity, path or agent can equal.
EMPTY_LIST_SENTINEL = "__secretsight_empty_list__"

PIPELINE_PRIORITY = 10  # before every target pipeline (field mappings come later)


def placeholder_values(config: Config) -> dict[str, list[str]]:
    """Placeholder name -> its list of values from `config` (never empty, see the sentinel)."""
    out: dict[str, list[str]] = {}
    for name, dotted in PLACEHOLDERS.items():
        values = config_value(config, dotted)
        if name in CIDR_PLACEHOLDERS:
            values = [str(ipaddress.ip_network(v, strict=False)) for v in values]
        out[name] = [str(v) for v in values] or [EMPTY_LIST_SENTINEL]
    return out


# ---------------------------------------------------------------------------------------------
# Pipeline


@dataclass
class CIDRPlaceholderTransformation(BasePlaceholderTransformation):
    """Replace a placeholder that makes up a whole value by one CIDR expression per network in the
    pipeline variable of the same name (`|expand` cannot be chained with `|cidr`)."""

    def apply_value(self, field: str | None, val: SigmaType) -> Any:
        if not isinstance(val, SigmaString) or not val.contains_placeholder(
            self.include, self.exclude
        ):
            return None
        parts = val.s
        if len(parts) != 1 or not isinstance(parts[0], Placeholder):
            raise SigmaError(
                f"CIDR placeholder on field {field!r} must be the whole value, got {val}"
            )
        name = parts[0].name
        if not self.is_handled_placeholder(parts[0]):
            return None
        if self._pipeline is None or name not in self._pipeline.vars:
            raise SigmaError(f"Placeholder variable {name!r} is not defined")
        values = self._pipeline.vars[name]
        values = values if isinstance(values, list) else [values]
        if values == [EMPTY_LIST_SENTINEL]:
            # No internal network: keep a value no IP address can equal.
            return SigmaString(EMPTY_LIST_SENTINEL)
        return [SigmaCIDRExpression(str(ipaddress.ip_network(v, strict=False))) for v in values]

    def placeholder_replacements(self, p: Placeholder) -> Iterable[str]:  # pragma: no cover
        raise NotImplementedError  # apply_value is overridden


def placeholder_pipeline(config: Config | None = None) -> ProcessingPipeline:
    """The pipeline that fills every `%placeholder%` from `config`; run it before any target
    pipeline (priority 10). Backend-neutral: it only rewrites values."""
    config = config or Config()
    cidr = sorted(CIDR_PLACEHOLDERS)
    lists = sorted(set(PLACEHOLDERS) - CIDR_PLACEHOLDERS)
    return ProcessingPipeline(
        name="secretsight placeholders",
        priority=PIPELINE_PRIORITY,
        vars=placeholder_values(config),
        items=[
            ProcessingItem(
                CIDRPlaceholderTransformation(include=cidr),
                identifier="secretsight_cidr_placeholders",
            ),
            ProcessingItem(
                ValueListPlaceholderTransformation(include=lists),
                identifier="secretsight_list_placeholders",
            ),
        ],
    )

