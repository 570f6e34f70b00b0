"""pySigma's SQLite backend (2.0.0), set up for the engine's table, plus element-wise matching of
list fields (`user.roles`, `vault.token_policies`, ...).

Sigma reads a condition on a list-valued field as "any element matches" (as Elasticsearch does);
a flattened SQLite column holds the list as JSON text, so a plain `=` would compare the whole
array. Conditions on list fields are therefore emitted as
`EXISTS (SELECT 1 FROM json_each(<field>) WHERE value <op> ...)`, reusing the backend's own
conversion for the inner comparison (wildcards, case-insensitivity, CIDR, regex all unchanged).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from sigma.backends.sqlite import sqliteBackend
from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionOR
from sigma.conversion.state import ConversionState
from sigma.processing.pipeline import ProcessingPipeline
from sigma.types import (
    SigmaBool,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
)

from secretsight.engine import table

_ELEMENT = "value"  # json_each's element column
_ELEMENTWISE = (
    SigmaString,
    SigmaNumber,
    SigmaBool,
    SigmaRegularExpression,
    SigmaCIDRExpression,
    SigmaCompareExpression,
)


class SecretSightSQLiteBackend(sqliteBackend):
    list_fields: frozenset[str] = frozenset()
    # The backend reads a negated condition over an absent field as false with
    # `NOT COALESCE(<expr>, 0)`. SQLite computes an OR inside a function argument in full (no
    # short-circuit outside jump contexts): every `|cidr` prefix LIKE of `internal_networks`
    # (26 of them) ran for every row. `CASE WHEN <expr>` is a jump context, so the chain stops
    # at the first match, and it gives the same value for every <expr> (NULL and 0 -> 0, any
    # other number -> 1): 0.12 s -> 0.02 s per 100,000 rows for the internal_networks filter.
    null_safe_expression = "CASE WHEN {expr} THEN 1 ELSE 0 END"

    def convert_condition_field_eq_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        if cond.field in self.list_fields and isinstance(cond.value, _ELEMENTWISE):
            inner = dataclasses.replace(cond, field=_ELEMENT)
            inner.parent = cond.parent
            expr = super().convert_condition_field_eq_val(inner, state)
            column = self.escape_and_quote_field(cond.field)
            exists = f"EXISTS (SELECT 1 FROM json_each({column}) WHERE {expr})"
            text = _plain(cond.value)
            if text is None or '"' in text or "\\" in text:
                return exists
            # json_each opens a table per row (0.4 us: `user.roles: root` cost 0.03 s per
            # 100,000 Vault events). An element equal to `text` (ASCII case folded, as NOCASE
            # and LIKE both fold) is written `"<text>"` in a cell that holds no backslash (no
            # JSON escape at all), so a cell without it and without a backslash has no such
            # element: the EXISTS is 0 there, as on NULL (json_each of NULL is empty; tested
            # first: one comparison, not two calls). Cells are json.dumps output
            # (engine/table.py), valid JSON either way.
            return (f"CASE WHEN {column} IS NULL THEN 0 WHEN instr({column}, '\\') OR {column} LIKE "
                    f"'%\"{_like_escaped(text)}\"%' ESCAPE '\\' THEN {exists} ELSE 0 END")
        return super().convert_condition_field_eq_val(cond, state)

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        """A value without wildcards that holds `_` or `%` as `=` ... COLLATE NOCASE.

        The backend sends such a value through `LIKE '<escaped>' ESCAPE '\\'`, which with no
        wildcard left is the same test as NOCASE equality (both fold ASCII case only, both are
        NULL on NULL), but a function call per row instead of a comparison: every empty
        allowlist is the value `__secretsight_empty_list__` (rules/placeholders.py), two or
        three per rule, on every event (0.02 s per 100,000 Vault events over the shared
        inputs). Values with a backslash keep the backend's form."""
        text = _plain(cond.value)
        if (text is None or "\\" in text or not ("_" in text or "%" in text)
                or self.collate_nocase is not True):
            return super().convert_condition_field_eq_val_str(cond, state)
        literal = text.replace("'", "''")
        return self.collation_expression.format(
            expr=f"{self.escape_and_quote_field(cond.field)}='{literal}'")

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> Any:
        """An OR of conditions on one field skips them all when the field is NULL.

        `user_agent.original LIKE 'curl/%' OR ... LIKE '%kubehound%'` (15 LIKEs) ran for every
        Vault event, which has no user agent: 0.06 s per 100,000 rows, for a value known in
        advance (NULL). `CASE WHEN f IS NULL THEN NULL WHEN <or> THEN 1 ELSE 0 END` has the
        same value for every row: that the OR is NULL on a NULL field is checked by evaluating
        it on one (`_null_on_null`), not assumed, so a condition that is true on NULL
        (`|exists`, `null`) or reads another column (a field reference) keeps the OR as it is;
        on a non-NULL field each comparison, so the OR, is 0 or 1. Only ORs of several LIKEs
        on one non-list field qualify (a list field's `EXISTS` is 0 on NULL)."""
        expr = super().convert_condition_or(cond, state)
        args = cond.args
        if not isinstance(expr, str) or expr.count(" LIKE ") < _MIN_GUARDED:
            return expr
        fields = {a.field if isinstance(a, ConditionFieldEqualsValueExpression) else None
                  for a in args}
        if len(fields) != 1 or None in fields:
            return expr
        name = str(fields.pop())
        if name in self.list_fields or not _null_on_null(self.escape_and_quote_field(name), expr):
            return expr
        # The OR in a WHEN, not the ELSE: a condition short-circuits, a value does not (the
        # 26 prefix LIKEs of internal_networks would all run). On a non-NULL field each
        # comparison is 0 or 1, and so is the OR: THEN 1 ELSE 0 is its value.
        return (f"CASE WHEN {self.escape_and_quote_field(name)} IS NULL THEN NULL "
                f"WHEN {expr} THEN 1 ELSE 0 END")

    def correlation_plan(self, rule: Any) -> dict[str, Any]:
        """The v2 plan the backend built for a correlation while converting the collection,
        including a referenced correlation that produced no output query of its own.

        pySigma-backend-sqlite 2.0.0 has no public accessor: the plans live in the private
        `_correlation_plans` (keyed by `id(rule)`). This is the one place that reads it, so a
        backend upgrade that renames it breaks here, loudly (KeyError/AttributeError)."""
        plans: dict[int, dict[str, Any]] = self._correlation_plans
        return plans[id(rule)]


# Only ORs of at least this many LIKEs are guarded: a LIKE is a function call (~40 ns), an `=`
# a comparison, and on a field that is not NULL the guard is pure overhead. On the 100k-event
# log a guard on every OR made the shared inputs' predicates 0.18 -> 0.21 s (their short value
# lists of `secret.operation` and `user.id`, never NULL there) while the plain rules went
# 0.18 -> 0.13 s (the user agent's 15 LIKEs, NULL for Vault events).
_MIN_GUARDED = 4


def _plain(value: Any) -> str | None:
    """The text of a Sigma string without wildcards or placeholders (None: another value)."""
    if not isinstance(value, SigmaString) or value.contains_special() \
            or value.contains_placeholder():
        return None
    return value.to_plain()


def _like_escaped(text: str) -> str:
    """`text` as a literal inside a LIKE pattern with ESCAPE '\\', quoted for SQL."""
    out = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return out.replace("'", "''")


def _null_on_null(field: str, expr: str) -> bool:
    """Whether `expr` (over `field` only) is NULL where `field` is NULL."""
    probe = sqlite3.connect(":memory:")
    try:
        row = probe.execute(f"SELECT ({expr}) IS NULL FROM (SELECT NULL AS {field})").fetchone()
    except sqlite3.Error:
        return False  # e.g. REGEXP (undefined here as on the engine's connection), a fieldref
    finally:
        probe.close()
    return bool(row and row[0] == 1)


def make_backend(pipeline: ProcessingPipeline | None) -> SecretSightSQLiteBackend:
    backend = SecretSightSQLiteBackend(
        processing_pipeline=pipeline,
        collect_errors=True,
        table=table.TABLE,
        timestamp_field=table.TS_COLUMN,
        timestamp_format="unix",
        # `_ts` is always a REAL written by the engine: skip the backend's defensive parsing.
        timestamp_seconds_expression="{field}",
        event_id_field=table.ID_COLUMN,
        # Columns are NOCASE already; this also covers json_each elements of list fields.
        collate_nocase=True,
    )
    backend.list_fields = table.list_fields()
    return backend
