"""vector/tests.yaml is generated from the goldens, in sync, and passes when replayed on VRL.

Without a `vector` binary the generated tests are replayed the way `vector test` runs them:
the input event goes through the remap program, and each condition (a VRL assertion) must
hold for at least one emitted event. The vrl-python compiler runs the conditions.
"""

from __future__ import annotations

import pytest
import yaml
from support.vrl_programs import gen_tests, load_golden, program

TESTS = yaml.safe_load(gen_tests.TESTS_FILE.read_text("utf-8"))["tests"]
TRANSFORM_SOURCE = {transform: source for source, transform in gen_tests.TRANSFORM.items()}
# What Vector's `raw` test input adds besides the message (LogEvent::from_str_legacy).
RAW_INPUT_EXTRA = {"timestamp": "2026-01-01T00:00:00Z"}


def test_tests_file_in_sync_with_goldens():
    expected = gen_tests.render(load_golden())
    actual = gen_tests.TESTS_FILE.read_text("utf-8")
    assert actual == expected, "vector/tests.yaml is stale: run python vector/gen_tests.py"


def test_every_golden_case_has_a_vector_test():
    names = {t["name"] for t in TESTS}
    wanted = {c.name for c in load_golden()}
    assert names == wanted


def _emitted(programs, runtime, test):
    (given,) = test["inputs"]
    source = TRANSFORM_SOURCE[given["insert_at"]]
    if given["type"] == "raw":
        out = programs.emit(source, {"message": given["value"], **RAW_INPUT_EXTRA})
    else:  # `vrl`: builds the exact (possibly invalid UTF-8) bytes inside VRL
        prelude_and_program = given["source"] + "\n" + program(source)
        out = runtime.execute(prelude_and_program, {}).processed_event
    return out if isinstance(out, list) else [out]


def _holds(runtime, condition, event):
    try:
        runtime.execute(condition, event)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("test", TESTS, ids=lambda t: t["name"])
def test_generated_vector_test_passes_on_vrl(programs, runtime, test):
    emitted = _emitted(programs, runtime, test)
    if "no_outputs_from" in test:
        assert emitted == []
        return
    (output,) = test["outputs"]
    conditions = [c["source"] for c in output["conditions"]]
    failing = [c for c in conditions if not any(_holds(runtime, c, e) for e in emitted)]
    assert failing == []
    assert len(emitted) == len(conditions)
