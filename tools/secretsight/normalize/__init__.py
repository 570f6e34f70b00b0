"""The Python normalizer: raw audit lines -> the SecretSight normalized event
(`schema/event.yml`), with skip and dead-letter reason codes (`schema/dispositions.yml`).

Rules: docs/normalization.md. Oracle shared with the VRL and Lua implementations:
tests/golden/*.yml."""

from secretsight.normalize.codes import MAX_LINE_BYTES, DeadLetter, load_dispositions
from secretsight.normalize.line import SOURCES, detect_source, normalize_line, strict_loads
from secretsight.normalize.reader import DeadLetterRecord, Stats, dedupe_key, iter_files

__all__ = [
    "MAX_LINE_BYTES",
    "SOURCES",
    "DeadLetter",
    "DeadLetterRecord",
    "Stats",
    "dedupe_key",
    "detect_source",
    "iter_files",
    "load_dispositions",
    "normalize_line",
    "strict_loads",
]
