"""The compile targets: name -> what builds its output.

`secretsight compile`, `release` and the CLI's choices read the names from here; a new target
is one entry. SIEM targets compile a Sigma rule set (`Compiler`); the `alerting` target
(Alertmanager, Prometheus rules, Grafana: secretsight.alerting) is built from the config alone
(`Builder`). Each loader imports its module only when that target is compiled (pySigma
backends are heavy), and nothing here is looked up by building a module name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from secretsight.compile.model import TargetOutput
    from secretsight.config import Config
    from secretsight.rules import RuleSet

Compiler = Callable[["RuleSet", "Config", "TargetOutput"], None]
Builder = Callable[["Config"], "TargetOutput"]


def _elastic() -> Compiler:
    from secretsight.compile.elastic import compile_rules

    return compile_rules


def _loki() -> Compiler:
    from secretsight.compile.loki import compile_rules

    return compile_rules


def _splunk() -> Compiler:
    from secretsight.compile.splunk import compile_rules

    return compile_rules


def _alerting() -> Builder:
    from secretsight.alerting.build import compile_output

    return compile_output


SIEM_REGISTRY: dict[str, Callable[[], Compiler]] = {
    "elastic": _elastic,
    "loki": _loki,
    "splunk": _splunk,
}
# Targets built from the config alone, no rules; the alerting target's matrix rows are its
# Prometheus alerting rules.
CONFIG_REGISTRY: dict[str, Callable[[], Builder]] = {
    "alerting": _alerting,
}
ALERTING = "alerting"
SIEM_TARGETS: tuple[str, ...] = tuple(sorted(SIEM_REGISTRY))
TARGETS: tuple[str, ...] = (*sorted(CONFIG_REGISTRY), *SIEM_TARGETS)


def compiler(target: str) -> Compiler:
    """The rule-set compiler of a SIEM target (KeyError for another name)."""
    return SIEM_REGISTRY[target]()


def builder(target: str) -> Builder:
    """The builder of a config-only target (KeyError for another name)."""
    return CONFIG_REGISTRY[target]()
