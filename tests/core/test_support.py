"""tests/support: importable by name, and a missing input says what is missing."""

from __future__ import annotations

import pytest
from support.samples import SAMPLES, params_or_missing


def test_missing_samples_become_one_case_skipped_with_the_reason() -> None:
    (param,) = params_or_missing([], 2, "{vault,k8s}/*.*json")
    (mark,) = param.marks
    assert (param.id, param.values, mark.name) == ("samples-missing", (None, None), "skip")
    assert str(SAMPLES) in mark.kwargs["reason"] and "{vault,k8s}/*.*json" in mark.kwargs["reason"]


def test_present_samples_are_the_cases() -> None:
    params = [pytest.param("vault", b"{}", id="a")]
    assert params_or_missing(params, 2, "x") is params
