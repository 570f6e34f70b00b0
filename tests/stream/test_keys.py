"""A group's key in the store is `json.dumps` of its group-by values, whichever way it is spelled
(evaluator._json_list writes the common case, one printable ASCII text, without the encoder):
state written by earlier versions must still name the same groups."""

from __future__ import annotations

import json
from typing import Any

import pytest

from secretsight.stream.evaluator import _json_list

KEYS: list[tuple[Any, ...]] = [
    ("hvs.token-0001",), ("",), ("a b",), ('say "hi"',), ("back\\slash",), ("tab\there",),
    ("line\nbreak",), ("del\x7f",), ("\x00",), ("été",), ("日本",), ("emoji \U0001f600",),
    ("/",), ("</script>",), (7,), (7.5,), (True,), ("10.0.0.1", "alice"), ("x", 3), (),
]


@pytest.mark.parametrize("keys", KEYS, ids=repr)
def test_group_key_is_json_of_the_values(keys: tuple[Any, ...]) -> None:
    assert _json_list(keys) == json.dumps(list(keys))
