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
- an absent field is NULL: every comparison on it is false, and the backend wraps every `not`
  in COALESCE(..., 0), so two-valued logic with "absent = false" gives the same answer.
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


class _Compiler:
    def __init__(self) -> None:
        self.consts: dict[str, Any] = {
            "_text": _text, "_long": _long, "_boolean": _boolean, "_elements": _elements,
            "_fold": fold,
        }
        self.types = table.schema_columns()
        self.fields: set[str] = set()

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    def node(self, cond: Any) -> str:
        if isinstance(cond, ConditionAND):
            return "(" + " and ".join(self.node(a) for a in cond.args) + ")"
        if isinstance(cond, ConditionOR):
            merged = self.like_any(cond.args)
            if merged is not None:
                return merged
            return "(" + " or ".join(self.node(a) for a in cond.args) + ")"
        if isinstance(cond, ConditionNOT):
            return f"(not {self.node(cond.args[0])})"
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            return self.leaf(cond.field, cond.value)
        raise Unstreamable(f"{type(cond).__name__} is not supported in the stream")

    def like_any(self, args: list[Any]) -> str | None:
        """Several wildcard patterns on one text field (a list of globs, e.g. the suspicious
        user agents): one alternation instead of one regex per pattern."""
        if len(args) < 2 or not all(
                isinstance(a, ConditionFieldEqualsValueExpression)
                and type(a.value) is SigmaString and a.value.contains_special() for a in args):
            return None
        field = args[0].field
        if any(a.field != field for a in args) or self.types.get(field) in (
                None, "keyword[]", "long", "boolean"):
            return None
        self.fields.add(field)
        pattern = re.compile("|".join(f"(?:{_like(a.value, cased=False).pattern})" for a in args),
                             re.DOTALL | re.IGNORECASE | re.ASCII)
        return (f"((v := _text(f.get({field!r}))) is not None and "
                f"{self.const(pattern)}.fullmatch(v) is not None)")

    def leaf(self, field: str, value: Any) -> str:
        ftype = self.types.get(field)
        if ftype is None:
            raise Unstreamable(f"field {field!r} is not in the schema (no engine column)")
        self.fields.add(field)
        raw = f"f.get({field!r})"
        if isinstance(value, SigmaExists):
            return f"({raw} is {'not ' if value.exists else ''}None)"
        if isinstance(value, SigmaNull):
            return f"({raw} is None)"
        if ftype == "keyword[]":
            test = self.scalar("x", "keyword", value)
            return f"any({test} for x in _elements({raw}))"
        if ftype == "long":
            return self.scalar(f"_long({raw})", ftype, value)
        if ftype == "boolean":
            return self.scalar(f"_boolean({raw})", ftype, value)
        return self.scalar(f"_text({raw})", ftype, value, folded=f"F[{field!r}]")

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
        v = self.flat.get(field)
        out = self[field] = None if v is None else fold(v if type(v) is str else str(v))
        return out


def compile_rule(rule: SigmaRule) -> tuple[Predicate, frozenset[str]]:
    """The rule's detection (placeholders already applied) -> (predicate over a flattened
    event and its `Folded` view, the fields it reads)."""
    compiler = _Compiler()
    exprs = [compiler.node(cond.parsed) for cond in rule.detection.parsed_condition]
    source = " or ".join(f"({e})" for e in exprs) or "False"
    code = compile(f"lambda f, F: bool({source})", f"<sigma rule {rule.name}>", "eval")
    return eval(code, compiler.consts), frozenset(compiler.fields)  # noqa: S307 - our own generated code
