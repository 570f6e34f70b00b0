"""The VRL programs compile on Vector's VRL compiler and share their common blocks."""

from __future__ import annotations

import json
import re

import pytest
from support.vrl_programs import PROGRAMS, SOURCES, program
from vrl_python import VRLRuntime

from secretsight.schema import load

BLOCK = re.compile(r"# ---- PROLOGUE \(shared\).*?# ---- END PROLOGUE -+\n", re.DOTALL)


@pytest.mark.parametrize("source", PROGRAMS)
def test_program_has_no_diagnostics(source):
    diagnostic = VRLRuntime.check_syntax(program(source))
    assert diagnostic is None, diagnostic.formatted_message


@pytest.mark.parametrize("source", PROGRAMS)
def test_program_compiles(source):
    assert VRLRuntime().compile(program(source)) is True


@pytest.mark.parametrize("source", SOURCES[1:])
def test_prologue_is_the_same_copy(source):
    # VRL has no include: the prologue is duplicated on purpose and must not drift.
    (vault_prologue,) = BLOCK.findall(program("vault"))
    (prologue,) = BLOCK.findall(program(source))
    assert prologue == vault_prologue


def test_auto_program_is_generated_from_the_three():
    import gen_auto  # vector/gen_auto.py (pytest pythonpath)

    assert program("auto") == gen_auto.render(), "vector/auto.vrl is stale: run vector/gen_auto.py"


def test_vault_metadata_allow_list_is_the_schemas() -> None:
    """The one list VRL cannot import: the same keys as event.yml `vault.auth.metadata.*`."""
    lists = re.findall(r'includes\((\["role", "role_name",[^\]]*\])', program("vault"))
    assert len(lists) == 1
    schema_keys = {n.rsplit(".", 1)[1] for n in load().fields if n.startswith("vault.auth.metadata.")}
    assert set(json.loads(lists[0])) == schema_keys
