"""One raw line -> a list of items (`{"event"}`, `{"skip"}`, `{"dead_letter"}`): decoding, strict
JSON, source detection, then the source's normalizer (which handles its own envelopes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from secretsight.normalize.cloudtrail import normalize_cloudtrail
from secretsight.normalize.codes import MAX_LINE_BYTES
from secretsight.normalize.kubernetes import normalize_kubernetes
from secretsight.normalize.vault import normalize_vault

try:  # orjson is a pinned dependency; the stdlib path stays for environments without it
    import orjson

    fast_loads: Callable[[bytes | str], Any] | None = orjson.loads
except ImportError:  # pragma: no cover
    fast_loads = None

SOURCES = ("vault", "cloudtrail", "kubernetes")
VAULT_TYPES = frozenset({"request", "response", "kmip-request", "kmip-response"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_std_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def strict_loads(data: bytes | str) -> Any:
    """RFC 8259 JSON only (no NaN/Infinity, one value, nothing after it)."""
    if fast_loads is not None:
        try:
            return fast_loads(data)
        except ValueError:
            pass  # orjson also refuses integers beyond 64 bits, which are JSON: ask the stdlib
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        obj = _std_decoder.decode(text)
    except RecursionError:  # nesting deeper than any audit event: refuse like orjson does
        raise ValueError("JSON nested too deeply") from None
    if "\\u" in text:
        # The stdlib decodes `\udc80` escapes into lone surrogates that no UTF-8 writer can
        # emit (orjson refuses them up front): the record is not UTF-8 text.
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise LoneSurrogateError(str(exc)) from None
    return obj


class LoneSurrogateError(ValueError):
    """A `\\uD800`-`\\uDFFF` escape that is not half of a pair."""


def detect_source(obj: dict[str, Any]) -> str | None:
    """Which source a parsed object comes from (order documented in docs/normalization.md)."""
    t = obj.get("type")
    if type(t) is str and t in VAULT_TYPES:
        return "vault"
    if "Records" in obj or "Events" in obj or ("detail-type" in obj and "detail" in obj):
        return "cloudtrail"
    if "protoPayload" in obj:
        return "kubernetes"
    props = obj.get("properties")
    if type(props) is dict and "log" in props:
        return "kubernetes"
    if "eventSource" in obj or "eventName" in obj:
        return "cloudtrail"
    api_version = obj.get("apiVersion")
    if (
        obj.get("kind") == "Event"
        or "auditID" in obj
        or (type(api_version) is str and api_version.startswith("audit.k8s.io/"))
    ):
        return "kubernetes"
    return None


_WHITESPACE = b" \t\r\n"


def normalize_line(raw: bytes | str, source: str = "auto") -> list[dict[str, Any]]:
    """Normalize one raw line from `source` (vault | cloudtrail | kubernetes | auto).

    Returns one item per record the line holds (at least one): `{"event": {...}}`,
    `{"skip": code}` or `{"dead_letter": code}`, codes from schema/dispositions.yml."""
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (expected auto, {', '.join(SOURCES)})")
    if isinstance(raw, str):
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: not UTF-8 text
            return [{"dead_letter": "invalid_utf8"}]
    else:
        data = raw
    return line_items(data, source)


def line_items(data: bytes, source: str) -> list[dict[str, Any]]:
    """`normalize_line` of bytes and a checked source."""
    if len(data) > MAX_LINE_BYTES:
        return [{"dead_letter": "line_too_long"}]
    if (not data or data[0] in _WHITESPACE) and not data.strip(_WHITESPACE):
        return [{"skip": "empty_line"}]
    try:
        obj = strict_loads(data)
    except LoneSurrogateError:
        return [{"dead_letter": "invalid_utf8"}]
    except (ValueError, UnicodeDecodeError):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return [{"dead_letter": "invalid_utf8"}]
        return [{"dead_letter": "malformed_json"}]
    return object_items(obj, source)


def object_items(obj: Any, source: str) -> list[dict[str, Any]]:
    """The items of one parsed line."""
    if type(obj) is not dict:
        return [{"dead_letter": "not_an_object"}]
    if source == "auto":
        detected = detect_source(obj)
        if detected is None:
            return [{"dead_letter": "unknown_source"}]
        source = detected
    if source == "vault":
        return normalize_vault(obj)
    if source == "cloudtrail":
        return normalize_cloudtrail(obj, strict_loads)
    return normalize_kubernetes(obj, strict_loads)
