"""The SecretSight Sigma rules: loading them with the user's tunables applied, and the
placeholder pipeline every backend runs first.

Rules live in `sigma/rules/<source>/<name>.yml` (source: vault, cloudtrail, kubernetes, cross).
A file holds one alerting rule, named like the file and last; a correlation's file first holds
the building blocks it references (YAML documents separated by `---`, which pySigma and
sigma-cli load as one collection in file order), so `sigma convert <dir>` works whatever order the file system lists
the files in (see `_file_layout_errors`, `sigma_cli_layout_problems`).
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
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ValueListPlaceholderTransformation
from sigma.processing.transformations.placeholder import BasePlaceholderTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import Placeholder, SigmaCIDRExpression, SigmaString, SigmaType

from secretsight.config import Config, format_duration
from secretsight.errors import SecretSightError
from secretsight.findings import ANOMALY_CLASSES

SOURCES: tuple[str, ...] = ("vault", "cloudtrail", "kubernetes", "cross")
SERVICES: dict[str, str | None] = {
    "vault": "vault",
    "cloudtrail": "cloudtrail",
    "kubernetes": "kubernetes",
    "cross": None,
}


def _rules_dir() -> Path:
    env = os.environ.get("SECRETSIGHT_RULES")
    if env:
        return Path(env)
    # Repo layout: tools/secretsight/rules.py -> <repo>/sigma/rules
    return Path(__file__).resolve().parents[2] / "sigma" / "rules"


RULES_DIR: Path = _rules_dir()

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



@dataclass(frozen=True)
class RuleMeta:
    name: str
    id: str
    title: str
    anomaly: str
    level: str | None
    path: Path
    source: str  # the directory: vault | cloudtrail | kubernetes | cross
    kind: str  # "detection" (plain rule) | "correlation"
    correlation_type: str | None = None
    group_by: tuple[str, ...] = ()
    # False for a building block only used by correlations (Sigma `generate: false`): engines
    # and targets must not alert on it by itself.
    emits: bool = True
    # False for target-only rules that `scan` skips (a stateful detector reports the anomaly).
    embedded: bool = True
    references: tuple[str, ...] = ()  # names of the rules a correlation references
    thresholds: dict[str, Any] = field(default_factory=dict)  # target -> value applied


@dataclass
class RuleSet:
    collection: SigmaCollection
    rules: list[RuleMeta]
    errors: list[SecretSightError]

    def by_name(self, name: str) -> RuleMeta:
        for meta in self.rules:
            if meta.name == name:
                return meta
        raise KeyError(name)

    def meta_for(self, rule: SigmaRule | SigmaCorrelationRule) -> RuleMeta | None:
        """The metadata of a pySigma rule of this set (by name, else by id)."""
        for meta in self.rules:
            if meta.name == rule.name or meta.id == str(rule.id):
                return meta
        return None

    def emitting(self) -> list[RuleMeta]:
        return [m for m in self.rules if m.emits]

    def raise_errors(self) -> None:
        """One SecretSightError listing every problem (the first one's file/line)."""
        if not self.errors:
            return
        first = self.errors[0]
        lines = "\n".join(str(e) for e in self.errors)
        raise SecretSightError(
            f"{len(self.errors)} rule error(s):\n{lines}", file=first.file, line=first.line
        )


# ---------------------------------------------------------------------------------------------
# Config access


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


# ---------------------------------------------------------------------------------------------
# Loading


def rule_files(paths: Iterable[str | Path] | None = None) -> list[Path]:
    """Rule files under `paths` (files or directories; default RULES_DIR), sorted: every `.yml`,
    as sigma-cli reads a directory (the rules' test cases live in tests/rules/cases)."""
    roots = [Path(p) for p in paths] if paths is not None else [RULES_DIR]
    files: set[Path] = set()
    for root in roots:
        if root.is_dir():
            files.update(root.rglob("*.yml"))
        else:
            files.add(root)
    return sorted(files)


def _line_of(text: str, key: str) -> int | None:
    """1-based line of the first `key:` in `text` (good enough to point a user at a problem)."""
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*:", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


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


def _detection_items(detection: SigmaDetection) -> Iterator[SigmaDetectionItem]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _detection_items(item)
        else:
            yield item


def rule_fields(rule: SigmaRule | SigmaCorrelationRule) -> set[str]:
    """Every event field a rule names (detection items, group-by, value_count field)."""
    if isinstance(rule, SigmaCorrelationRule):
        fields = set(rule.group_by or [])
        ref = getattr(rule.condition, "fieldref", None)
        if isinstance(ref, str):
            fields.add(ref)
        elif isinstance(ref, list):
            fields.update(ref)
        return fields
    return {
        item.field
        for detection in rule.detection.detections.values()
        for item in _detection_items(detection)
        if item.field is not None
    }


def rule_placeholders(rule: SigmaRule | SigmaCorrelationRule) -> set[str]:
    """Names of every `%placeholder%` a plain rule uses."""
    if isinstance(rule, SigmaCorrelationRule):
        return set()
    names: set[str] = set()
    for detection in rule.detection.detections.values():
        for item in _detection_items(detection):
            for value in item.value:
                if isinstance(value, SigmaString):
                    names.update(p.name for p in value.s if isinstance(p, Placeholder))
    return names


def _sigma_error(exc: SigmaError, path: Path, text: str) -> SecretSightError:
    line = getattr(getattr(exc, "source", None), "line", None)
    return SecretSightError(str(exc).split(" in rule ")[0], file=str(path), line=line)


def _contract_errors(
    rule: SigmaRule | SigmaCorrelationRule, raw: dict[str, Any], path: Path, text: str
) -> list[SecretSightError]:
    """What SecretSight requires beyond Sigma (see docs/rules.md)."""
    from secretsight import schema  # the schema loads its YAML lazily

    errs: list[SecretSightError] = []

    def err(msg: str, key: str | None = None) -> None:
        errs.append(SecretSightError(msg, file=str(path), line=_line_of(text, key) if key else None))

    # name == file stem is a file-layout rule (_file_layout_errors): files hold building blocks.
    if not re.fullmatch(r"[a-z][a-z0-9_]*", rule.name or ""):
        err("rule name must be snake_case", "name")
    anomaly = raw.get("anomaly")
    if anomaly not in ANOMALY_CLASSES:
        err(f"anomaly {anomaly!r} is not one of secretsight.findings.ANOMALY_CLASSES", "anomaly")
    source = path.parent.name
    if source not in SOURCES:
        err(f"rule directory {source!r} is not one of {', '.join(SOURCES)}")
    if isinstance(rule, SigmaRule):
        if rule.logsource.product != "secretsight":
            err("logsource.product must be secretsight", "product")
        want = SERVICES.get(source)
        if rule.logsource.service != want:
            err(f"logsource.service must be {want!r} for rules in {source}/", "logsource")
    known = schema.load().fields
    for name in sorted(rule_fields(rule) - set(known)):
        err(f"field {name!r} is not in the normalized schema (schema/event.yml)", name)
    for name in sorted(rule_placeholders(rule) - set(PLACEHOLDERS)):
        err(f"placeholder %{name}% is not defined in secretsight.rules.PLACEHOLDERS")
    embedded = raw.get("embedded", True)
    if not isinstance(embedded, bool):
        err("embedded must be true or false", "embedded")
    return errs


@dataclass
class _Loaded:
    rule: SigmaRule | SigmaCorrelationRule
    name: str
    raw: dict[str, Any]
    path: Path
    text: str
    applied: dict[str, Any]

    @property
    def refs(self) -> list[str]:
        if isinstance(self.rule, SigmaCorrelationRule):
            return [ref.reference for ref in self.rule.rules or []]
        return []


_DOC_START = re.compile(r"^---[ \t]*$", re.MULTILINE)


def split_documents(text: str) -> list[str]:
    """The YAML documents of a rule file, each padded with blank lines so that line numbers in
    it are those of the file (`_line_of` and YAML errors then point into the file)."""
    bounds = [0] + [m.end() for m in _DOC_START.finditer(text)]
    ends = [m.start() for m in _DOC_START.finditer(text)] + [len(text)]
    return ["\n" * text.count("\n", 0, start) + text[start:end]
            for start, end in zip(bounds, ends, strict=True)]


def rule_documents(path: Path) -> list[dict[str, Any]]:
    """The rules of one file as parsed YAML mappings (building blocks first)."""
    return [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d is not None]


def _file_layout_errors(items: list[_Loaded], path: Path) -> dict[str, list[SecretSightError]]:
    """A file holds one rule named like the file, last, optionally preceded by building blocks
    that a later rule of the file references (a correlation family in multi-document YAML).
    The repo's rules also keep every reference inside its file, before the correlation
    (tests/rules checks `sigma_cli_layout_problems`): sigma-cli (pySigma 1.5.1) converts a
    directory's rules in file-system order, and its reference sort only reorders neighbours, so
    a correlation whose rules sit in another file converts or fails depending on the machine.
    `secretsight compile` orders rules itself, so the loader accepts references across files."""
    errs: dict[str, list[SecretSightError]] = {}

    def err(item: _Loaded, msg: str, key: str) -> None:
        errs.setdefault(item.name, []).append(
            SecretSightError(msg, file=str(path), line=_line_of(item.text, key)))

    stem = path.name[: -len(".yml")]
    for i, item in enumerate(items):
        if i == len(items) - 1:
            if item.name != stem:
                err(item, f"rule name {item.name!r} must equal the file stem {stem!r} (a file's "
                    "last rule is the one named like the file)", "name")
        elif not any(item.name in later.refs for later in items[i + 1:]):
            err(item, f"rule {item.name!r} is not referenced by a correlation after it in "
                "this file: only the file's last rule may stand alone", "name")
    return errs


def sigma_cli_layout_problems(path: Path) -> list[str]:
    """References of a file's rules that do not resolve to an earlier rule of the same file:
    what would make `sigma convert <dir>` depend on the file-system order."""
    docs = rule_documents(path)
    problems = []
    for i, doc in enumerate(docs):
        earlier = {d.get("name") for d in docs[:i]}
        refs = (doc.get("correlation") or {}).get("rules") or []
        problems += [f"{doc.get('name')} -> {r}" for r in refs if r not in earlier]
    return problems


def _load_file(path: Path, config: Config, fail: Any) -> list[_Loaded]:
    """One rule file -> its pySigma rules (building blocks first) with thresholds applied;
    rules with errors are left out (errors to `fail`)."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        fail(SecretSightError(f"cannot read rule: {exc}", file=str(path)))
        return []
    docs: list[tuple[dict[str, Any], str]] = []
    for doc_text in split_documents(text):
        try:
            raw = yaml.safe_load(doc_text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            fail(SecretSightError(
                f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                line=mark.line + 1 if mark is not None else None,
            ))
            return []
        if raw is None:  # comments only (the file's header)
            continue
        if not isinstance(raw, dict):
            first = len(doc_text) - len(doc_text.lstrip("\n")) + 1
            fail(SecretSightError("each YAML document of a rule file is one rule (a mapping)",
                                  file=str(path), line=first))
            return []
        docs.append((raw, doc_text))
    if not docs:
        fail(SecretSightError("rule file holds no rule", file=str(path)))
        return []
    loaded = [_load_document(raw, doc_text, path, config, fail) for raw, doc_text in docs]
    items = [x for x in loaded if x is not None]
    if len(items) != len(loaded):
        return items  # the layout cannot be judged with a rule missing; its error is reported
    layout = _file_layout_errors(items, path)
    for problems in layout.values():
        for problem in problems:
            fail(problem)
    return [x for x in items if x.name not in layout]


def _load_document(raw: dict[str, Any], text: str, path: Path, config: Config,
                   fail: Any) -> _Loaded | None:
    tuned = copy.deepcopy(raw)
    try:
        applied = apply_thresholds(tuned, config)
    except (KeyError, ValueError, TypeError) as exc:
        fail(SecretSightError(
            f"config_threshold: {exc}", file=str(path), line=_line_of(text, "config_threshold")
        ))
        return None
    location = SigmaRuleLocation(path)
    rule: SigmaRule | SigmaCorrelationRule
    try:
        if "correlation" in tuned:
            rule = SigmaCorrelationRule.from_dict(tuned, collect_errors=True, source=location)
        else:
            rule = SigmaRule.from_dict(tuned, collect_errors=True, source=location)
    except SigmaError as exc:
        fail(_sigma_error(exc, path, text))
        return None
    if rule.errors:
        for err in rule.errors:
            fail(_sigma_error(err, path, text))
        return None
    contract = _contract_errors(rule, raw, path, text)
    for problem in contract:
        fail(problem)
    if contract or rule.name is None:
        return None
    return _Loaded(rule, rule.name, raw, path, text, applied)


def load_rules(
    paths: Iterable[str | Path] | None = None,
    config: Config | None = None,
    *,
    collect_errors: bool = True,
) -> RuleSet:
    """Load rule files (default: every rule under RULES_DIR) with `config`'s thresholds applied.

    With `collect_errors` every problem (YAML, Sigma, SecretSight contract, duplicate names or
    ids, unknown references) is gathered into `RuleSet.errors` and the rules that loaded are
    kept; without it the first one is raised.
    The backends apply processing pipelines to rule objects in place: convert a fresh RuleSet
    (or a deepcopy of `collection`) per target.
    """
    config = config or Config()
    errors: list[SecretSightError] = []

    def fail(e: SecretSightError) -> None:
        if not collect_errors:
            raise e
        errors.append(e)

    loaded = [x for p in rule_files(paths) for x in _load_file(p, config, fail)]

    # Unique names and ids across the set.
    seen_names: dict[str, Path] = {}
    seen_ids: dict[str, Path] = {}
    kept: list[_Loaded] = []
    for item in loaded:
        rid = str(item.rule.id)
        if item.name in seen_names:
            fail(SecretSightError(
                f"rule name {item.name!r} already used by {seen_names[item.name]}",
                file=str(item.path), line=_line_of(item.text, "name"),
            ))
        elif rid in seen_ids:
            fail(SecretSightError(
                f"rule id {rid} already used by {seen_ids[rid]}",
                file=str(item.path), line=_line_of(item.text, "id"),
            ))
        else:
            seen_names[item.name] = item.path
            seen_ids[rid] = item.path
            kept.append(item)

    # A correlation whose references are missing is dropped (transitively).
    by_name = {item.name: item for item in kept}
    changed = True
    while changed:
        changed = False
        for item in list(by_name.values()):
            missing = [r for r in item.refs if r not in by_name]
            if missing:
                fail(SecretSightError(
                    f"correlation references unknown rule(s): {', '.join(missing)}",
                    file=str(item.path), line=_line_of(item.text, "rules"),
                ))
                del by_name[item.name]
                changed = True

    # pySigma sorts with a partial order (`referenced_by`), which `sorted` cannot honour: order
    # by reference depth so every backend sees a rule before the correlations that use it.
    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        refs = [r for r in by_name[name].refs if r in by_name and r not in seen]
        return 1 + max((depth(r, seen | {name}) for r in refs), default=0) if refs else 0

    ordered = sorted(
        by_name.values(), key=lambda i: (depth(i.name), i.path.parent.name, i.name)
    )
    collection = SigmaCollection([i.rule for i in ordered], errors=[], resolve_references=False)
    try:
        for item in ordered:
            if isinstance(item.rule, SigmaCorrelationRule):
                item.rule.resolve_rule_references(collection)
    except SigmaError as exc:
        fail(SecretSightError(f"cannot resolve correlation references: {exc}"))

    referenced: set[str] = set()
    generated: set[str] = set()
    for item in ordered:
        if isinstance(item.rule, SigmaCorrelationRule):
            (generated if item.rule.generate else referenced).update(item.refs)

    metas = [_meta(item, emits=item.name not in referenced or item.name in generated)
             for item in ordered]
    metas.sort(key=lambda m: (m.source, m.name))
    return RuleSet(collection=collection, rules=metas, errors=errors)


def _meta(item: _Loaded, *, emits: bool) -> RuleMeta:
    rule = item.rule
    corr = rule if isinstance(rule, SigmaCorrelationRule) else None
    return RuleMeta(
        name=item.name,
        id=str(rule.id),
        title=rule.title,
        anomaly=item.raw["anomaly"],
        level=str(rule.level) if rule.level is not None else None,
        path=item.path,
        source=item.path.parent.name,
        kind="correlation" if corr else "detection",
        correlation_type=str(corr.type) if corr else None,
        group_by=tuple(corr.group_by or ()) if corr else (),
        emits=emits,
        embedded=item.raw.get("embedded", True) is not False,
        references=tuple(item.refs),
        thresholds=item.applied,
    )
