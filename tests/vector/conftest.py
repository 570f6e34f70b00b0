"""Fixtures for the Vector (VRL) normalizer tests."""

from __future__ import annotations

from typing import Any

import pytest
from support.vrl_programs import PROGRAMS, exact_bytes_program, message, program, to_items
from vrl_python import VRLRuntime


class Programs:
    """One vrl-python runtime per program: a runtime caches only the last program it compiled
    (compiling a normalizer takes ~0.2 s, running it well under 1 ms)."""

    def __init__(self) -> None:
        self._runtimes = {source: VRLRuntime() for source in PROGRAMS}
        self._sources = {source: program(source) for source in PROGRAMS}
        self._bytes_runtime = VRLRuntime()

    def emit(self, source: str, event: dict[str, Any]) -> Any:
        """What the remap transform emits for `event` (an object or an array of objects)."""
        return self._runtimes[source].execute(self._sources[source], event).processed_event

    def items(self, source: str, line: str | bytes) -> list[dict[str, Any]]:
        """The items a raw line yields; bytes that are not UTF-8 are built inside VRL."""
        if isinstance(line, str):
            return to_items(self.emit(source, {"message": line}))
        text = message(line)
        if text is not None:
            return to_items(self.emit(source, {"message": text}))
        out = self._bytes_runtime.execute(exact_bytes_program(source, line), {}).processed_event
        return to_items(out)


@pytest.fixture(scope="session")
def programs() -> Programs:
    return Programs()


@pytest.fixture(scope="session")
def runtime() -> VRLRuntime:
    """A runtime for one-off programs (conditions, exact-bytes runs)."""
    return VRLRuntime()
