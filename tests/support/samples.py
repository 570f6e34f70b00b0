"""The real-format samples (../shared/samples beside the repo, read in place, never copied)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"


def missing_reason(what: str) -> str:
    return (f"real-format samples not found: no {what} under {SAMPLES} "
            "(they live in ../shared/samples beside the repo)")


def params_or_missing(params: list[Any], argcount: int, what: str) -> list[Any]:
    """`params`, or, when there are none, one case skipped with the reason: which samples are
    missing and where they were looked for (pytest would only say "got empty parameter set")."""
    if params:
        return params
    return [pytest.param(*([None] * argcount), id="samples-missing",
                         marks=pytest.mark.skip(reason=missing_reason(what)))]
