"""A Sigma detection (after the placeholder pipeline `scan` applies) as a Python predicate over
one normalized event, with the embedded engine's SQL semantics.

The condition tree is pySigma's own (`SigmaCondition.parsed`); nothing re-reads YAML. Each leaf
becomes a Python expression that answers what the SQLite backend's SQL answers on the engine's
table (`engine/table.py`, `engine/backend.py`):
- strings: `=` COLLATE NOCASE and LIKE both fold ASCII letters only (SQLite), wildcards `*`/`?`
  are LIKE's `%`/`_`; `|cased` is GLOB (case-sensitive);
- `|cidr`: the backend's prefix expansion (`SigmaCIDRExpression.expand`), matched as prefixes;
- numbers and `|gt`...: on `long` columns, which hold only integers (anything else is NULL);
- booleans: the column holds 'true'/'false' from the value's truthiness;
- list fields (keyword[]): any element matches;
- an absent field is NULL: every comparison on it is false, and the engine's backend writes
  every `not` as `NOT CASE WHEN ... THEN 1 ELSE 0 END` (engine/backend.py), so two-valued
  logic with "absent = false" gives the same answer.
Anything else (keywords without a field, regular expressions, field references) raises
`Unstreamable`: `watch` names the rule at start and `scan` still evaluates it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaNull,
    SigmaNumber,
    SigmaString,
    SpecialChars,
)

from secretsight.engine import table

Predicate = Callable[[dict[str, Any], "Folded"], bool]

# SQLite's NOCASE and LIKE fold A-Z only.
_ASCII_LOWER = {c: c + 32 for c in range(65, 91)}


class Unstreamable(Exception):
    """A detection the stream cannot evaluate exactly as the engine does."""


def fold(value: str) -> str:
    return value.lower() if value.isascii() else value.translate(_ASCII_LOWER)


def flatten(event: dict[str, Any], out: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested event -> dotted keys (dotted keys given flat are kept, as the engine's table)."""
    for key, value in event.items():
        if type(value) is dict:
            flatten(value, out, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def _text(value: Any) -> str | None:
    """A text column's content (engine.table._cell: non-strings are stored as str())."""
    if value is None or type(value) is str:
        return value
    return str(value)


def _long(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _boolean(value: Any) -> str | None:
    return None if value is None else ("true" if value else "false")


def _elements(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _like(value: SigmaString, *, cased: bool) -> re.Pattern[str]:
    parts = []
    for part in value.s:
        if part == SpecialChars.WILDCARD_MULTI:
            parts.append(".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            parts.append(".")
        elif isinstance(part, str):
            parts.append(re.escape(part))
        else:
            raise Unstreamable(f"unresolved placeholder in {value}")
    flags = re.DOTALL | (0 if cased else re.IGNORECASE | re.ASCII)
    return re.compile("".join(parts), flags)


class Compiler:
    """Writes a detection as one Python expression. How a field is read is the caller's:
    `raw(field)` gives the expression of the field's value as the flattened event holds it,
    `folded(field)` the expression of its text ASCII-folded (computed once per event),
    `folded_set(field)` a list field's elements folded (a set); by
    default `f.get(...)` and `F[...]` (a flattened event and its `Folded` view), the fused
    classifier (`classify.py`) gives local variables of its generated function instead.
    Each test of ONE field (a leaf, or a merged OR of leaves) goes through
    `atom(field, expression)`, which may stand something else for it (the classifier: a
    bit of the field's memoized tests); by default the expression itself."""

    def __init__(self, raw: Callable[[str], str] | None = None,
                 folded: Callable[[str], str] | None = None,
                 consts: dict[str, Any] | None = None,
                 folded_set: Callable[[str], str] | None = None,
                 atom: Callable[[str, str], str] | None = None) -> None:
        self.consts: dict[str, Any] = consts if consts is not None else {}
        self.consts.update({
            "_text": _text, "_long": _long, "_boolean": _boolean, "_elements": _elements,
            "_fold": fold, "_fold_set": fold_set,
        })
        self.raw = raw or (lambda field: f"f.get({field!r})")
        self.folded = folded or (lambda field: f"F[{field!r}]")
        self.folded_set = folded_set or (lambda field: f"_fold_set(f.get({field!r}))")
        self.atom = atom or (lambda field, expr: expr)
        self.types = table.schema_columns()
        self.fields: set[str] = set()

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        while name in self.consts:  # (a shared namespace: several rules' constants)
            name += "_"
        self.consts[name] = value
        return name

    def node(self, cond: Any) -> str:
        if isinstance(cond, ConditionAND):
            return "(" + " and ".join(self.node(a) for a in cond.args) + ")"
        if isinstance(cond, ConditionOR):
            merged = self.like_any(cond.args) or self.cidr_any(cond.args)
            if merged is not None:
                return merged
            return "(" + " or ".join(self.equal_any(cond.args)) + ")"
        if isinstance(cond, ConditionNOT):
            return f"(not {self.node(cond.args[0])})"
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            return self.atom(cond.field, self.leaf(cond.field, cond.value))
        raise Unstreamable(f"{type(cond).__name__} is not supported in the stream")

    def equal_any(self, args: list[Any]) -> list[str]:
        """An OR's branches, the plain values on one text field as ONE set membership test
        (`%system_identities%`: a value list), where the first of them stood."""
        by_field: dict[str, list[str]] = {}
        for a in args:
            if (isinstance(a, ConditionFieldEqualsValueExpression)
                    and type(a.value) is SigmaString and not a.value.contains_special()
                    and self.types.get(a.field) not in (None, "keyword[]", "long", "boolean")):
                by_field.setdefault(a.field, []).append(
                    fold("".join(p for p in a.value.s if isinstance(p, str))))
        out, done = [], set()
        for a in args:
            field = getattr(a, "field", None)
            values = by_field.get(field) if isinstance(field, str) else None
            if values is None or len(values) < 2 or (
                    isinstance(a, ConditionFieldEqualsValueExpression)
                    and not (type(a.value) is SigmaString
                             and not a.value.contains_special())):
                out.append(self.node(a))
                continue
            assert isinstance(field, str)
            if field in done:
                continue
            done.add(field)
            self.fields.add(field)
            out.append(self.atom(
                field, f"({self.folded(field)} in {self.const(frozenset(values))})"))
        return out

    def _one_text_field(self, args: list[Any], value_ok: Callable[[Any], bool]) -> str | None:
        """The field when `args` are two or more equality tests of one plain text field
        (not a list, number or boolean) whose values all pass `value_ok`; else None."""
        if len(args) < 2 or not all(
                isinstance(a, ConditionFieldEqualsValueExpression) and value_ok(a.value)
                for a in args):
            return None
        field: str = args[0].field
        if any(a.field != field for a in args) or self.types.get(field) in (
                None, "keyword[]", "long", "boolean"):
            return None
        self.fields.add(field)
        return field

    def like_any(self, args: list[Any]) -> str | None:
        """Several wildcard patterns on one text field (a list of globs, e.g. the suspicious
        user agents): one alternation instead of one regex per pattern."""
        field = self._one_text_field(
            args, lambda v: type(v) is SigmaString and v.contains_special())
        if field is None:
            return None
        pattern = re.compile("|".join(f"(?:{_like(a.value, cased=False).pattern})" for a in args),
                             re.DOTALL | re.IGNORECASE | re.ASCII)
        return self.atom(field, f"((v := _text({self.raw(field)})) is not None and "
                                f"{self.const(pattern)}.fullmatch(v) is not None)")

    def cidr_any(self, args: list[Any]) -> str | None:
        """Several networks on one text field (`%internal_networks%`): one prefix test."""
        field = self._one_text_field(args, lambda v: isinstance(v, SigmaCIDRExpression))
        if field is None:
            return None
        prefixes = tuple(fold(p.rstrip("*")) for a in args
                         for p in a.value.expand(wildcard="*"))
        return self.atom(field, f"((w := {self.folded(field)}) is not None and "
                                f"w.startswith({self.const(prefixes)}))")

    def leaf(self, field: str, value: Any) -> str:
        ftype = self.types.get(field)
        if ftype is None:
            raise Unstreamable(f"field {field!r} is not in the schema (no engine column)")
        self.fields.add(field)
        raw = self.raw(field)
        if isinstance(value, SigmaExists):
            return f"({raw} is {'not ' if value.exists else ''}None)"
        if isinstance(value, SigmaNull):
            return f"({raw} is None)"
        if ftype == "keyword[]":
            if type(value) is SigmaString and not value.contains_special():
                # any element equal (folded): one set per event and field, not a loop per test
                literal = fold("".join(p for p in value.s if isinstance(p, str)))
                return f"({literal!r} in {self.folded_set(field)})"
            test = self.scalar("x", "keyword", value)
            return f"any({test} for x in _elements({raw}))"
        if ftype == "long":
            return self.scalar(f"_long({raw})", ftype, value)
        if ftype == "boolean":
            return self.scalar(f"_boolean({raw})", ftype, value)
        return self.scalar(f"_text({raw})", ftype, value, folded=self.folded(field))

    def scalar(self, expr: str, ftype: str, value: Any, folded: str | None = None) -> str:
        """`expr` (the column's value) compared with a Sigma value, as in SQL. `folded`: the
        same value ASCII-folded, computed once per event and field (`Folded`)."""
        if folded is None:
            folded = f"(None if (v := {expr}) is None else _fold(str(v)))"
        if isinstance(value, SigmaCIDRExpression):
            prefixes = tuple(fold(p.rstrip("*")) for p in value.expand(wildcard="*"))
            return f"((w := {folded}) is not None and w.startswith({self.const(prefixes)}))"
        if isinstance(value, SigmaCasedString):
            pattern = _like(value, cased=True)
            return f"((v := {expr}) is not None and {self.const(pattern)}.fullmatch(str(v)) is not None)"
        if isinstance(value, SigmaString):
            if value.contains_special():
                pattern = _like(value, cased=False)
                return (f"((v := {expr}) is not None and "
                        f"{self.const(pattern)}.fullmatch(str(v)) is not None)")
            literal = "".join(p for p in value.s if isinstance(p, str))  # no escapes
            if ftype == "long":
                try:
                    return f"({expr} == {int(literal)!r})"
                except ValueError:
                    return "False"
            return f"({folded} == {fold(literal)!r})"
        if isinstance(value, SigmaBool):
            want = "true" if value.boolean else "false"
            if ftype == "boolean":
                return f"({expr} == {want!r})"
            return f"({folded} in ({want!r}, {str(int(value.boolean))!r}))"
        if isinstance(value, SigmaNumber):
            if ftype == "long":
                return f"({expr} == {value.number!r})"
            return f"((v := {expr}) is not None and str(v) == {str(value.number)!r})"
        if isinstance(value, SigmaCompareExpression):
            if ftype != "long":
                raise Unstreamable("numeric comparison on a non-integer field")
            op = {1: "<", 2: "<=", 3: ">", 4: ">="}[value.op.value]
            return f"((v := {expr}) is not None and v {op} {value.number.number!r})"
        raise Unstreamable(f"{type(value).__name__} values are not supported in the stream")


class Folded(dict[str, str | None]):
    """One event's text fields ASCII-folded on first use (`F` in the predicates): a field that
    several rules compare is folded once per event, not once per comparison."""

    __slots__ = ("flat",)

    def __init__(self, flat: dict[str, Any]) -> None:
        super().__init__()
        self.flat = flat

    def __missing__(self, field: str) -> str | None:
        out = self[field] = fold_cell(self.flat.get(field))
        return out


def fold_set(v: Any) -> set[str]:
    """A list field's elements (a scalar: itself) as folded text, without the nulls."""
    return {fold(x if type(x) is str else str(x)) for x in _elements(v) if x is not None}


def fold_cell(v: Any) -> str | None:
    """A text column's value (str() of a non-string) ASCII-folded, as NOCASE compares it."""
    return None if v is None else fold(v if type(v) is str else str(v))


# A necessary condition of a detection: field -> the folded values it must have (None: only
# that it is present). An event failing it cannot match, so the stream skips the predicate.
Needs = dict[str, frozenset[str] | None]


def _needs(cond: Any, types: dict[str, str]) -> Needs:
    """What every event the condition matches has, read off the tree as `Compiler` writes
    it: a leaf on a field is false on an absent field (unless it tests absence), a plain
    string on a text field is a folded equality; AND joins, OR keeps what all branches
    share, NOT gives nothing."""
    if isinstance(cond, ConditionAND):
        out: Needs = {}
        for arg in cond.args:
            for name, values in _needs(arg, types).items():
                have = out.get(name)
                if have is None:  # absent, or presence only: the branch says as much or more
                    out[name] = values
                elif values is not None:
                    out[name] = have & values
        return out
    if isinstance(cond, ConditionOR):
        return _shared([_needs(a, types) for a in cond.args])
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        value, ftype = cond.value, types.get(cond.field)
        if isinstance(value, SigmaExists | SigmaNull):
            return {cond.field: None} if isinstance(value, SigmaExists) and value.exists else {}
        if (type(value) is SigmaString and not value.contains_special()
                and ftype not in (None, "keyword[]", "long", "boolean")):
            return {cond.field: frozenset(
                [fold("".join(p for p in value.s if isinstance(p, str)))])}
        return {cond.field: None}
    return {}  # NOT, or anything the compiler refuses


def _shared(branches: list[Needs]) -> Needs:
    """The needs of an OR: the fields every branch needs, with the union of their values."""
    if not branches:
        return {}
    shared: Needs = {}
    for name in set(branches[0]).intersection(*branches[1:]):
        sets = [b[name] for b in branches]
        shared[name] = None if any(v is None for v in sets) else frozenset().union(
            *(v for v in sets if v is not None))
    return shared


def guard_of(rule: SigmaRule) -> tuple[str, frozenset[str] | None] | None:
    """One necessary condition of the rule's detection (placeholders applied) to test before
    its predicate: a value set on `event.dataset` if there is one, else the smallest value
    set, else a field that must be present; None when the detection needs nothing."""
    types = table.schema_columns()
    needs = _shared([_needs(c.parsed, types) for c in rule.detection.parsed_condition])
    valued = {k: v for k, v in needs.items() if v is not None}
    if "event.dataset" in valued:
        return "event.dataset", valued["event.dataset"]
    if valued:
        name = min(valued, key=lambda k: (len(valued[k] or ()), k))
        return name, valued[name]
    return (min(needs), None) if needs else None


def expression(rule: SigmaRule, compiler: Compiler) -> str:
    """The rule's detection as one Python expression (fields read as `compiler` says)."""
    exprs = [compiler.node(cond.parsed) for cond in rule.detection.parsed_condition]
    return " or ".join(f"({e})" for e in exprs) or "False"


def compile_rule(rule: SigmaRule) -> tuple[Predicate, frozenset[str]]:
    """The rule's detection (placeholders already applied) -> (predicate over a flattened
    event and its `Folded` view, the fields it reads)."""
    compiler = Compiler()
    source = expression(rule, compiler)
    code = compile(f"lambda f, F: bool({source})", f"<sigma rule {rule.name}>", "eval")
    return eval(code, compiler.consts), frozenset(compiler.fields)  # noqa: S307 - our own generated code
