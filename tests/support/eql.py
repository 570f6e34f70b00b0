"""Cross-check the embedded SQLite engine against EQL: pySigma's Elasticsearch backend compiles
each plain rule to EQL, `eql` (the Python EQL engine) evaluates it over the same normalized
events, and both must match the same events.

pySigma emits Elasticsearch's current EQL dialect (`field:"v"`, `field like~ (...)`), while
the `eql` package implements the original one, so the query is rewritten term by term:
`f:"v"` / `f like~ ("a", "b")` -> `wildcard(f, "a", "b")` (case-insensitive, `*`/`?` globs, as in
Elasticsearch); on list fields -> `arraySearch(f, x, wildcard(x, ...))` (any element, as
Elasticsearch reads arrays); `f:true` -> `f == true`. A rule is NOT expressible (reported, not
compared) when the backend refuses it or a value needs an escaped literal `*`/`?` (`eql` has no
escape inside wildcard()).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import eql
from sigma.backends.elasticsearch import EqlBackend
from sigma.rule import SigmaRule

from secretsight.engine.table import list_fields

_STRING = r'"(?:[^"\\]|\\.)*"'
_LIKE = re.compile(rf"([A-Za-z_@][\w.@]*) like~ \(((?:\s*{_STRING}\s*,?)+)\)")
_LIKE_NUM = re.compile(r"([A-Za-z_@][\w.@]*) like~ \(((?:\s*-?\d+\s*,?)+)\)")
_EQ = re.compile(rf"([A-Za-z_@][\w.@]*):({_STRING}|true|false|-?\d+(?:\.\d+)?)")


class NotExpressible(Exception):
    pass


def _match(field: str, values: list[str], lists: frozenset[str], null_safe: bool) -> str:
    for v in values:
        if re.search(r"\\[*?]", v):
            raise NotExpressible(f"literal wildcard character in {v} (no escape in eql wildcard())")
    joined = ", ".join(values)
    if field in lists:
        expr = f"arraySearch({field}, x, wildcard(x, {joined}))"
    else:
        expr = f"wildcard({field}, {joined})"
    return f"({field} != null and {expr})" if null_safe else expr


def translate(query: str, lists: frozenset[str] | None = None, *, null_safe: bool = False) -> str:
    """Elasticsearch EQL (pySigma output) -> the `eql` package's dialect.

    EQL is three-valued: a comparison on an absent field is null and `not null` is null, so
    `sel and not filter` drops events lacking a filter field, where Sigma (and SQLite with the
    backend's COALESCE) reads the filter as false and keeps them. `null_safe` guards every
    comparison with `field != null`, which gives Sigma's two-valued reading."""
    lists = lists if lists is not None else list_fields()

    def like(m: re.Match[str]) -> str:
        return _match(m.group(1), re.findall(_STRING, m.group(2)), lists, null_safe)

    def eq(m: re.Match[str]) -> str:
        field, value = m.group(1), m.group(2)
        if value in ("true", "false") or not value.startswith('"'):
            if field in lists:
                return f"arrayContains({field}, {value})"
            return f"{field} == {value}"
        return _match(field, [value], lists, null_safe)

    query = _LIKE_NUM.sub(lambda m: f"{m.group(1)} in ({m.group(2)})", query)
    return _EQ.sub(eq, _LIKE.sub(like, query))


@dataclass
class Compiled:
    name: str
    eql: str | None  # as Elasticsearch EQL means it (three-valued)
    why_not: str | None = None
    eql_null_safe: str | None = None  # with Sigma's reading of absent fields


def compile_rules(ruleset: Any, config: Any) -> list[Compiled]:
    from secretsight.rules import placeholder_pipeline

    out = []
    for rule in ruleset.collection.rules:
        if not isinstance(rule, SigmaRule):
            continue
        backend = EqlBackend(processing_pipeline=placeholder_pipeline(config))
        standalone = copy.deepcopy(rule)
        # Building blocks of correlations are `generate: false` (no query of their own):
        # compile them standalone, their matches are what the correlations count.
        standalone._output = True
        try:
            queries = backend.convert_rule(standalone)
            if len(queries) != 1:
                raise NotExpressible(f"{len(queries)} queries")
            text = queries[0]
            if not text.startswith("any where "):  # a correlation's building block
                text = "any where " + text
            safe = translate(text, null_safe=True)
            text = translate(text)
            eql.parse_query(text)
            eql.parse_query(safe)
        except NotExpressible as exc:
            out.append(Compiled(rule.name, None, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - backend refusal or eql parse error: reported, not hidden
            out.append(Compiled(rule.name, None, f"{type(exc).__name__}: {exc}"))
            continue
        out.append(Compiled(rule.name, text, eql_null_safe=safe))
    return out


def eql_matches(query: str, events: list[dict[str, Any]]) -> set[str]:
    hits: list[Any] = []
    engine = eql.PythonEngine()
    engine.add_query(eql.parse_query(query))
    engine.add_output_hook(hits.append)
    engine.stream_events([eql.Event("generic", 0, e) for e in events])
    ids = set()
    for hit in hits:
        for event in getattr(hit, "events", None) or [hit]:
            ids.add(event.data["event"]["id"])
    return ids
