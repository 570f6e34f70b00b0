"""Loading rule files: YAML documents -> pySigma rules with the config applied, the SecretSight
contract (docs/rules.md) and the file layout checked, every error collected with file and line."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from secretsight import yamlio
from secretsight.config import Config
from secretsight.errors import SecretSightError
from secretsight.findings import ANOMALY_CLASSES
from secretsight.rules.introspect import rule_fields, rule_placeholders
from secretsight.rules.model import RULES_DIR, SERVICES, SOURCES, RuleMeta, RuleSet
from secretsight.rules.placeholders import PLACEHOLDERS
from secretsight.rules.tuning import apply_thresholds, render_description


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
        err(f"anomaly {anomaly!r} is not one of the classes of the anomaly catalogue "
            "(tools/secretsight/anomalies.yml)", "anomaly")
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
    return [d for d in yamlio.load_all(path.read_text("utf-8")) if d is not None]


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
            raw = yamlio.load(doc_text)
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
    if isinstance(tuned.get("description"), str):
        try:
            tuned["description"] = render_description(tuned["description"], config)
        except KeyError as exc:
            fail(SecretSightError(
                f"description names {exc.args[0]!r}, which is not a config key", file=str(path),
                line=_line_of(text, "description"),
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
