"""The user config in a rule: `config_threshold` writes the configured numbers into the rule before
pySigma parses it (`apply_thresholds`), and `{dotted.key}` in a description is replaced by the
configured value (`render_description`), so compiled text says what the compiled query does."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from secretsight.config import Config, format_duration


def config_value(config: Config, dotted: str) -> Any:
    """`thresholds.bulk_read.count` -> the value in `config`; KeyError when it does not exist."""
    value: Any = config
    for part in dotted.split("."):
        if isinstance(value, BaseModel) and part in type(value).model_fields:
            value = getattr(value, part)
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(dotted)
    return value



def _threshold_targets(spec: Any) -> dict[str, str]:
    if isinstance(spec, str):
        return {"": spec}
    if isinstance(spec, dict) and all(isinstance(v, str) for v in spec.values()):
        return {str(k): v for k, v in spec.items()}
    raise ValueError("config_threshold must be a dotted Config key or a mapping of them")


def _scalar(value: Any, *, for_timespan: bool = False) -> Any:
    if isinstance(value, timedelta):
        return format_duration(value) if for_timespan else int(value.total_seconds())
    return value


def _set_condition_value(rule: dict[str, Any], value: Any) -> None:
    cond = rule.get("correlation", {}).get("condition")
    if not isinstance(cond, dict):
        raise TypeError("config_threshold on a rule without a correlation condition mapping")
    ops = [k for k in cond if k != "field"]
    if len(ops) != 1:
        raise ValueError("config_threshold needs exactly one condition operator")
    cond[ops[0]] = value


def apply_thresholds(rule: dict[str, Any], config: Config) -> dict[str, Any]:
    """Write the configured numbers into a parsed rule dict (in place); returns what was set."""
    spec = rule.get("config_threshold")
    if spec is None:
        return {}
    applied: dict[str, Any] = {}
    for target, dotted in _threshold_targets(spec).items():
        value = config_value(config, dotted)
        if target == "":
            if isinstance(value, BaseModel):
                number = getattr(value, "count", None)
                if number is None:
                    number = getattr(value, "distinct", None)
                window = getattr(value, "window", None)
                if number is not None:
                    _set_condition_value(rule, number)
                    applied["condition"] = number
                if window is not None:
                    rule["correlation"]["timespan"] = format_duration(window)
                    applied["timespan"] = rule["correlation"]["timespan"]
            elif isinstance(value, timedelta):
                rule["correlation"]["timespan"] = format_duration(value)
                applied["timespan"] = rule["correlation"]["timespan"]
            else:
                _set_condition_value(rule, value)
                applied["condition"] = value
        elif target == "condition":
            _set_condition_value(rule, _scalar(value))
            applied["condition"] = _scalar(value)
        elif target == "timespan":
            rule["correlation"]["timespan"] = _scalar(value, for_timespan=True)
            applied["timespan"] = rule["correlation"]["timespan"]
        elif target.startswith("detection."):
            ident, _, item = target[len("detection."):].partition(".")
            detection = rule.get("detection", {}).get(ident)
            if not isinstance(detection, dict) or item not in detection:
                raise ValueError(f"config_threshold target {target!r} not found in the rule")
            detection[item] = _scalar(value)
            applied[target] = _scalar(value)
        else:
            raise ValueError(f"unknown config_threshold target {target!r}")
    return applied


# `{thresholds.bulk_read.count}`: a dotted config key (at least one dot) in braces.
_TEMPLATE = re.compile(r"\{([a-z_]+(?:\.[a-z_]+)+)\}")
_UNIT_NAMES = (("day", 86400), ("hour", 3600), ("minute", 60))


def describe_value(value: Any) -> str:
    """A config value as prose: 300 s -> '5 minutes', 90 s -> '90 seconds', 86400 s ->
    '24 hours' (days from two on: '14 days'), 50 -> '50'."""
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        for unit, size in _UNIT_NAMES:
            if unit == "day" and seconds < 2 * size:
                continue
            if seconds and seconds % size == 0:
                n = seconds // size
                return f"{n} {unit}{'' if n == 1 else 's'}"
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    return str(value)


def render_description(text: str, config: Config) -> str:
    """Replace every `{dotted.config.key}` in a rule's description by its value in `config`,
    so the text a target shows (alert annotations, rule descriptions) states the numbers the
    query uses. KeyError names a key that is not in the config."""
    return _TEMPLATE.sub(lambda m: describe_value(config_value(config, m.group(1))), text)
