-- A small, strict JSON decoder in pure Lua (LuaJIT 2.1 / Lua 5.1; no C modules).
--
-- Why not a Fluent Bit parser: the Lua filter receives the raw line untouched (`record.log`) and
-- decodes it here, so malformed JSON, truncation and non-UTF-8 are judged on exactly the bytes the
-- Python and VRL normalizers see.
--
-- Values: objects are plain Lua tables (no metatable); arrays carry the `array_mt` metatable
-- (so an empty array and an empty object stay distinguishable); JSON null is the `null`
-- sentinel (a Lua nil would silently delete the key). An integer literal is a Lua number
-- (a double: exact up to 2^53); a literal with a fraction or exponent ("8200.0", "1e3") is a
-- float, boxed as {value = x} with `float_mt`, because Python's json keeps 8200.0 a float and
-- the normalizers must refuse it where an integer is expected, exactly as the Python one does.
-- Strictness follows RFC 8259 as Python's json module does, with NaN/Infinity rejected; a
-- \u escape of a lone UTF-16 surrogate is refused as not UTF-8 (`decode`'s third result).

local byte, sub, find, char = string.byte, string.sub, string.find, string.char
local concat, tonumber, setmetatable = table.concat, tonumber, setmetatable
local error, pcall = error, pcall
local floor = math.floor

local M = {}

M.null = setmetatable({}, { __tostring = function() return "null" end })
M.array_mt = { __jsontype = "array" }
M.float_mt = { __jsontype = "float" }
local null, array_mt, float_mt = M.null, M.array_mt, M.float_mt

-- Deeper nesting than this is refused (malformed) instead of overflowing the Lua stack: the
-- Python normalizer's limit (orjson's) is 1024 levels too.
M.max_depth = 1024

local ESCAPES = {
  [34] = '"', [92] = "\\", [47] = "/", [98] = "\b",
  [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t",
}

local function fail(msg, pos, kind)
  error({ json_error = msg, pos = pos, kind = kind }, 0)
end

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local function hex4(s, i)
  local h = sub(s, i, i + 3)
  if #h < 4 or find(h, "[^%x]") then fail("bad \\u escape", i) end
  return tonumber(h, 16)
end

-- Index of the first '"', '\' or control character at or after i (nil at the end). A byte loop
-- rather than string.find: LuaJIT compiles it, while pattern matching stays in the interpreter.
local function scan(s, i)
  local c = byte(s, i)
  while c do
    if c == 34 or c == 92 or c < 32 then return i, c end
    i = i + 1
    c = byte(s, i)
  end
  return nil
end

-- i: index just after the opening quote. Returns the string and the index after the closing quote.
local function parse_string(s, i)
  local j, c = scan(s, i)
  if not j then fail("unterminated string", i) end
  if c == 34 then return sub(s, i, j - 1), j + 1 end -- the common case: no escapes
  local parts, n = {}, 0
  while true do
    if c == 34 then
      n = n + 1; parts[n] = sub(s, i, j - 1)
      return concat(parts), j + 1
    elseif c == 92 then
      n = n + 1; parts[n] = sub(s, i, j - 1)
      local e = byte(s, j + 1)
      if e == 117 then -- \uXXXX, with UTF-16 surrogate pairs joined
        local cp = hex4(s, j + 2)
        local nexti = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF and sub(s, nexti, nexti + 1) == "\\u" then
          local lo = hex4(s, nexti + 2)
          if lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            nexti = nexti + 6
          end
        end
        if cp >= 0xD800 and cp <= 0xDFFF then fail("lone surrogate escape", j, "utf8") end
        n = n + 1; parts[n] = utf8_char(cp)
        i = nexti
      else
        local r = e and ESCAPES[e]
        if not r then fail("bad escape", j) end
        n = n + 1; parts[n] = r
        i = j + 2
      end
    else
      fail("control character in string", j)
    end
    j, c = scan(s, i)
    if not j then fail("unterminated string", i) end
  end
end

local function parse_number(s, i)
  local _, e = find(s, "^-?0", i)
  if not e then
    _, e = find(s, "^-?[1-9]%d*", i)
    if not e then fail("bad number", i) end
  end
  local int_end = e
  local _, fe = find(s, "^%.%d+", e + 1)
  if fe then e = fe end
  local _, xe = find(s, "^[eE][-+]?%d+", e + 1)
  if xe then e = xe end
  local v = tonumber(sub(s, i, e))
  if e ~= int_end then return setmetatable({ value = v }, float_mt), e + 1 end
  return v, e + 1
end

local parse_value

local function skip_ws(s, i)
  local c = byte(s, i)
  while c == 32 or c == 9 or c == 10 or c == 13 do
    i = i + 1
    c = byte(s, i)
  end
  return i
end

local function parse_array(s, i, depth)
  local t, n = setmetatable({}, array_mt), 0
  i = skip_ws(s, i)
  if byte(s, i) == 93 then return t, i + 1 end
  while true do
    local v
    v, i = parse_value(s, i, depth)
    n = n + 1; t[n] = v
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 93 then return t, i + 1 end
    if c ~= 44 then fail("expected , or ] in array", i) end
    i = i + 1
  end
end

local function parse_object(s, i, depth)
  local t = {}
  i = skip_ws(s, i)
  if byte(s, i) == 125 then return t, i + 1 end
  while true do
    if byte(s, i) ~= 34 then fail("expected a string key", i) end
    local k
    k, i = parse_string(s, i + 1)
    i = skip_ws(s, i)
    if byte(s, i) ~= 58 then fail("expected :", i) end
    local v
    v, i = parse_value(s, i + 1, depth)
    t[k] = v -- a duplicated key keeps its last value, as Python's json does
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 125 then return t, i + 1 end
    if c ~= 44 then fail("expected , or } in object", i) end
    i = skip_ws(s, i + 1)
  end
end

parse_value = function(s, i, depth)
  i = skip_ws(s, i)
  local c = byte(s, i)
  if c == 34 then return parse_string(s, i + 1) end
  if c == 123 or c == 91 then
    if depth >= M.max_depth then fail("nesting too deep", i) end
    if c == 123 then return parse_object(s, i + 1, depth + 1) end
    return parse_array(s, i + 1, depth + 1)
  end
  if c == 116 then
    if sub(s, i, i + 3) == "true" then return true, i + 4 end
  elseif c == 102 then
    if sub(s, i, i + 4) == "false" then return false, i + 5 end
  elseif c == 110 then
    if sub(s, i, i + 3) == "null" then return null, i + 4 end
  elseif c == 45 or (c and c >= 48 and c <= 57) then
    return parse_number(s, i)
  end
  if c == nil then fail("unexpected end of input", i) end
  fail("unexpected character", i)
end

-- decode(s) -> value, or nil, an error message and "utf8" when the text is not valid Unicode
-- (a lone surrogate escape) or "json" otherwise. Whitespace around the value is allowed;
-- anything else after it ("extra data") is an error. Never raises.
function M.decode(s)
  local ok, v, i = pcall(parse_value, s, 1, 0)
  if not ok then
    if type(v) == "table" and v.json_error then
      return nil, v.json_error .. " at byte " .. v.pos, v.kind or "json"
    end
    return nil, tostring(v), "json" -- e.g. Lua stack exhaustion
  end
  i = skip_ws(s, i)
  if i <= #s then return nil, "extra data at byte " .. i, "json" end
  return v, nil
end

-- True when `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF),
-- the same judgement as Python's strict bytes.decode("utf-8").
function M.valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    if c < 0x80 then
      i = i + 1
    else
      local c2, c3, c4 = byte(s, i + 1, i + 3)
      if c >= 0xC2 and c <= 0xDF then
        if not c2 or c2 < 0x80 or c2 > 0xBF then return false end
        i = i + 2
      elseif c >= 0xE0 and c <= 0xEF then
        local lo, hi = 0x80, 0xBF
        if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
        if not c2 or c2 < lo or c2 > hi or not c3 or c3 < 0x80 or c3 > 0xBF then return false end
        i = i + 3
      elseif c >= 0xF0 and c <= 0xF4 then
        local lo, hi = 0x80, 0xBF
        if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
        if not c2 or c2 < lo or c2 > hi or not c3 or c3 < 0x80 or c3 > 0xBF
          or not c4 or c4 < 0x80 or c4 > 0xBF then return false end
        i = i + 4
      else
        return false
      end
    end
  end
  return true
end

function M.is_array(v)
  return type(v) == "table" and getmetatable(v) == array_mt
end

function M.is_object(v)
  return type(v) == "table" and getmetatable(v) == nil -- null, arrays and floats have one
end

function M.is_float(v)
  return type(v) == "table" and getmetatable(v) == float_mt
end

return M
