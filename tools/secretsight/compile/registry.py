"""The compile targets: name -> the function that compiles a rule set for it.

`secretsight compile`, `release` and the CLI's choices read the names from here; a new target
is one entry. Each loader imports its target module only when that target is compiled
(pySigma backends are heavy), and nothing here is looked up by building a module name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from secretsight.compile.model import TargetOutput
    from secretsight.config import Config
    from secretsight.rules import RuleSet

Compiler = Callable[["RuleSet", "Config", "TargetOutput"], None]


def _elastic() -> Compiler:
    from secretsight.compile.elastic import compile_rules

    return compile_rules


def _loki() -> Compiler:
    from secretsight.compile.loki import compile_rules

    return compile_rules


def _splunk() -> Compiler:
    from secretsight.compile.splunk import compile_rules

    return compile_rules


REGISTRY: dict[str, Callable[[], Compiler]] = {
    "elastic": _elastic,
    "loki": _loki,
    "splunk": _splunk,
}
TARGETS: tuple[str, ...] = tuple(sorted(REGISTRY))


def compiler(target: str) -> Compiler:
    """The compile function of `target` (KeyError for an unknown name)."""
    return REGISTRY[target]()
