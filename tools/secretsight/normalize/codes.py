"""The disposition vocabulary (`schema/dispositions.yml`), loaded once, and the exception a
source normalizer raises to dead-letter a record."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from secretsight import yamlio


@dataclass(frozen=True)
class Dispositions:
    max_line_bytes: int
    skip: dict[str, str]
    dead_letter: dict[str, str]


@cache
def load_dispositions() -> Dispositions:
    text = resources.files("secretsight.schema").joinpath("dispositions.yml").read_text("utf-8")
    raw = yamlio.load(text)
    return Dispositions(
        max_line_bytes=int(raw["max_line_bytes"]),
        skip=dict(raw["skip"]),
        dead_letter=dict(raw["dead_letter"]),
    )


MAX_LINE_BYTES: int = load_dispositions().max_line_bytes


class DeadLetter(Exception):
    """Raised while normalizing one record: it cannot be normalized, for reason `code`."""

    __slots__ = ("code",)

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code
