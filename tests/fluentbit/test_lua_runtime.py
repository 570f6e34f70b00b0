"""The Lua side's foundations: the runtime really is LuaJIT 2.1 (Fluent Bit's), and the pure-Lua
JSON decoder judges documents exactly as Python's json module does (what the Python normalizer
uses), so "malformed" means the same thing in every implementation."""

from __future__ import annotations

import json
import math
import re

import pytest
from lupa import luajit21
from support.lua_filters import FLUENTBIT_DIR

from secretsight.schema import load


@pytest.fixture(scope="module")
def lua():
    rt = luajit21.LuaRuntime(unpack_returned_tuples=True, encoding=None)
    rt.execute(f'package.path = "{FLUENTBIT_DIR}/lib/?.lua;" .. package.path'.encode())
    return rt


@pytest.fixture(scope="module")
def lua_json(lua):
    return lua.eval(b'require("json")')


def test_runtime_is_luajit_2_1(lua):
    assert lua.eval(b"jit and jit.version").decode().startswith("LuaJIT 2.1")
    assert lua.eval(b"_VERSION") == b"Lua 5.1"  # LuaJIT's language level: no integers, no utf8 lib


def _to_py(lua, lua_json, v):
    if v is None:
        return None
    if lua.eval(b"type")(v) == b"table":
        if lua.eval(b"rawequal")(v, lua_json.null):
            return None
        if lua_json.is_float(v):
            return float(v[b"value"])
        if lua_json.is_array(v):
            return [_to_py(lua, lua_json, v[i]) for i in range(1, len(v) + 1)]
        return {k.decode("utf-8", "surrogatepass"): _to_py(lua, lua_json, x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogatepass")
    return v


VALID = {
    "object": '{"a": 1, "b": [true, false, null], "c": {"d": "e"}}',
    "empty_containers": '{"a": {}, "b": []}',
    "escapes": r'{"s": "q\" b\\ s\/ \b\f\n\r\t"}',
    "unicode_escape": r'{"s": "\u00e9\u4e2d\ud83d\ude00"}',
    "raw_utf8": '{"s": "é中😀"}',
    "numbers": "[0, -0, 1, -12, 3.25, 1e3, 1E-2, -2.5e+2, 9007199254740993]",
    "duplicate_key_last_wins": '{"a": 1, "a": 2}',
    "surrounding_whitespace": ' \t{"a": 1}\r\n ',
    "top_level_array": "[1, 2]",
    "top_level_string": '"x"',
    "del_char_allowed": '{"s": "a\x7fb"}',
}
INVALID = {
    "truncated": '{"a": [1, 2',
    "truncated_string": '{"a": "bc',
    "trailing_data": '{"a": 1} {"b": 2}',
    "trailing_comma_object": '{"a": 1,}',
    "trailing_comma_array": "[1, 2,]",
    "single_quotes": "{'a': 1}",
    "unquoted_key": "{a: 1}",
    "leading_zero": "[01]",
    "bare_dot": "[1.]",
    "leading_dot": "[.5]",
    "plus_sign": "[+1]",
    "hex": "[0x10]",
    "control_char_in_string": '{"a": "b\tc"}',
    "bad_escape": r'{"a": "\x41"}',
    "short_unicode_escape": r'{"a": "\u12"}',
    "empty": "",
    "only_whitespace": "   ",
    "nan": "[NaN]",
    "infinity": "[Infinity]",
    "python_literals": "[True, None]",
    "comment": '{"a": 1} // c',
    "missing_colon": '{"a" 1}',
    "missing_comma": '{"a": 1 "b": 2}',
}


@pytest.mark.parametrize("doc", VALID.values(), ids=VALID.keys())
def test_decoder_agrees_with_python_on_valid_json(doc, lua, lua_json):
    value, err = lua_json.decode(doc.encode("utf-8", "surrogatepass"))
    assert err is None
    got = _to_py(lua, lua_json, value)
    want = json.loads(doc)
    if isinstance(want, list) and any(isinstance(x, int) and x > 2**53 for x in want):
        # doubles: integers beyond 2^53 round (only ids would be that big; they are strings)
        want = [float(x) if isinstance(x, int) else x for x in want]
    assert got == want


@pytest.mark.parametrize("doc", INVALID.values(), ids=INVALID.keys())
def test_decoder_rejects_what_python_rejects(doc, lua_json):
    with pytest.raises(ValueError):
        json.loads(doc, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    value, err, kind = lua_json.decode(doc.encode())
    assert value is None and err and kind == b"json"


def test_decoder_refuses_absurd_nesting_without_crashing(lua_json):
    value, err, _ = lua_json.decode(b"[" * 100_000)
    assert value is None and b"deep" in err


def test_integer_and_float_literals_stay_apart(lua, lua_json):
    # Python's json: 2764800 is an int, 2764800.0 and 1e3 are floats; a normalizer reading an
    # integer field must be able to tell (wrong_type), so floats are boxed.
    value, _ = lua_json.decode(b'{"ttl": 2764800, "f": 2764800.0, "e": 1e3, "h": 0.5}')
    assert value[b"ttl"] == 2764800 and isinstance(value[b"ttl"], int)
    for key, want in ((b"f", 2764800.0), (b"e", 1000.0), (b"h", 0.5)):
        assert lua_json.is_float(value[key]) and math.isclose(value[key][b"value"], want)


def test_lone_surrogate_escape_is_not_unicode(lua_json):
    value, _, kind = lua_json.decode(rb'{"s": "\udc80"}')
    assert value is None and kind == b"utf8"


UTF8 = {
    "ascii": (b"abc", True),
    "two_byte": ("é".encode(), True),
    "four_byte": ("😀".encode(), True),
    "lone_continuation": (b"a\x80b", False),
    "overlong_slash": (b"\xc0\xaf", False),
    "overlong_three_byte": (b"\xe0\x80\xaf", False),
    "surrogate": (b"\xed\xa0\x80", False),
    "above_max": (b"\xf4\x90\x80\x80", False),
    "truncated_sequence": (b"\xe4\xb8", False),
    "latin1_byte": (b"caf\xe9", False),
}


@pytest.mark.parametrize(("data", "valid"), UTF8.values(), ids=UTF8.keys())
def test_utf8_validation_matches_python(data, valid, lua_json):
    try:
        data.decode("utf-8")
        python_valid = True
    except UnicodeDecodeError:
        python_valid = False
    assert python_valid == valid
    assert bool(lua_json.valid_utf8(data)) == valid


def test_vault_metadata_allow_list_is_the_schemas() -> None:
    """The one list Lua cannot import: the same keys as event.yml `vault.auth.metadata.*`."""
    source = (FLUENTBIT_DIR / "lib" / "normalize_vault.lua").read_text("utf-8")
    block = re.search(r"local AUTH_METADATA_KEYS = \{(.*?)\}", source, re.S)
    assert block is not None
    keys = set(re.findall(r'"([^"]+)"', block.group(1)))
    schema_keys = {n.rsplit(".", 1)[1] for n in load().fields if n.startswith("vault.auth.metadata.")}
    assert keys == schema_keys
