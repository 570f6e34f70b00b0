-- Helpers shared by the three SecretSight normalizers: field access on decoded JSON, typed
-- setters that omit empty values (the schema never carries null or ""), timestamps, IPs, and the
-- Fluent Bit filter wrapper that turns normalizer items into records.

local json = require("json")

local null, array_mt = json.null, json.array_mt
local type, ipairs, tonumber, getmetatable, select = type, ipairs, tonumber, getmetatable, select
local find, sub, match, format, byte, gmatch =
  string.find, string.sub, string.match, string.format, string.byte, string.gmatch
local sort, floor = table.sort, math.floor

local M = {}

M.null = null -- JSON null (see json.lua)

-- ---------------------------------------------------------------- decoded-JSON access

-- get(t, "a", "b") -> t.a.b, or nil when any step is missing, null or not an object.
function M.get(t, ...)
  local n = select("#", ...)
  for i = 1, n do
    if type(t) ~= "table" or getmetatable(t) ~= nil then return nil end
    t = t[select(i, ...)]
  end
  if t == null then return nil end
  return t
end

-- A non-empty string, or nil.
function M.str(v)
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

M.is_object = json.is_object

function M.is_array(v)
  return type(v) == "table" and getmetatable(v) == array_mt
end

-- An integral number (JSON numbers decode to doubles), or nil.
function M.int(v)
  if type(v) == "number" and v == floor(v) and v > -2^53 and v < 2^53 then return v end
  return nil
end

-- The non-empty strings of an array, sorted and de-duplicated; nil when there are none.
function M.sorted_strings(v)
  if not M.is_array(v) then return nil end
  local seen, out = {}, {}
  for _, s in ipairs(v) do
    if type(s) == "string" and s ~= "" and not seen[s] then
      seen[s] = true
      out[#out + 1] = s
    end
  end
  if #out == 0 then return nil end
  sort(out)
  return out
end

-- The non-empty strings of an array in their logged order; nil when there are none.
function M.strings(v)
  if not M.is_array(v) then return nil end
  local out = {}
  for _, s in ipairs(v) do
    if type(s) == "string" and s ~= "" then out[#out + 1] = s end
  end
  if #out == 0 then return nil end
  return out
end

-- ---------------------------------------------------------------- building events

-- Dotted schema names split once.
local paths = setmetatable({}, { __index = function(t, name)
  local parts = {}
  for p in gmatch(name, "[^.]+") do parts[#parts + 1] = p end
  t[name] = parts
  return parts
end })

-- set(ev, "vault.path", v): nested assignment; nil is ignored so that absent fields stay absent.
function M.set(ev, name, v)
  if v == nil then return end
  local parts = paths[name]
  local t = ev
  for i = 1, #parts - 1 do
    local k = parts[i]
    local nxt = t[k]
    if nxt == nil then nxt = {}; t[k] = nxt end
    t = nxt
  end
  t[parts[#parts]] = v
end

-- ---------------------------------------------------------------- time

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local DAYS_IN_MONTH = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_in_month(y, m)
  if m == 2 and y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then return 29 end
  return DAYS_IN_MONTH[m]
end

local function digits(s) return s ~= "" and not find(s, "[^0-9]") end

-- Split "YYYY-MM-DD<sep>HH:MM:SS[.frac]<zone>" -> its parts; nil if the layout is wrong.
-- Forms (as the Python normalizer's): `T` with a zone `Z` / `+HH:MM` (RFC 3339), or a space with
-- an optional zone (CloudTrail/Panther "YYYY-MM-DD HH:MM:SS[.frac]", UTC when absent).
-- The fraction has 1 to 9 digits and is kept as written.
local function time_parts(s)
  if #s < 19 or sub(s, 5, 5) ~= "-" or sub(s, 8, 8) ~= "-" or sub(s, 14, 14) ~= ":"
    or sub(s, 17, 17) ~= ":" then
    return nil
  end
  local sep = sub(s, 11, 11)
  if sep ~= "T" and sep ~= " " then return nil end
  local Y, Mo, D = sub(s, 1, 4), sub(s, 6, 7), sub(s, 9, 10)
  local h, mi, se = sub(s, 12, 13), sub(s, 15, 16), sub(s, 18, 19)
  for _, part in ipairs({ Y, Mo, D, h, mi, se }) do
    if not digits(part) then return nil end
  end
  local rest, frac = sub(s, 20), ""
  if sub(rest, 1, 1) == "." then
    frac = match(rest, "^%.[0-9]+")
    if not frac or #frac > 10 then return nil end
    rest = sub(rest, #frac + 1)
  end
  local zone
  if rest == "Z" or (rest == "" and sep == " ") then
    zone = rest
  elseif match(rest, "^[+-][0-9][0-9]:[0-9][0-9]$") then
    zone = rest
  else
    return nil
  end
  return tonumber(Y), tonumber(Mo), tonumber(D), h, mi, se, frac, zone
end

-- rfc3339_utc("2024-01-02T03:04:05.5+01:00") -> "2024-01-02T02:04:05.5Z", epoch seconds, nanos;
-- nil for anything that is not a real date-time in one of the accepted forms.
function M.rfc3339_utc(s)
  if type(s) ~= "string" then return nil end
  local Y, Mo, D, hh, mi, ss, frac, zone = time_parts(s)
  if not Y then return nil end
  local h, n, sec = tonumber(hh), tonumber(mi), tonumber(ss)
  if not (Y >= 1 and Mo >= 1 and Mo <= 12 and D >= 1 and D <= days_in_month(Y, Mo)
    and h < 24 and n < 60 and sec < 60) then
    return nil
  end
  local offset = 0
  if zone ~= "" and zone ~= "Z" and zone ~= "+00:00" and zone ~= "-00:00" then
    local oh, om = tonumber(sub(zone, 2, 3)), tonumber(sub(zone, 5, 6))
    if oh > 23 or om > 59 then return nil end
    offset = (oh * 60 + om) * 60
    if sub(zone, 1, 1) == "-" then offset = -offset end
  end
  local epoch = days_from_civil(Y, Mo, D) * 86400 + h * 3600 + n * 60 + sec - offset
  local nanos = frac ~= "" and tonumber(sub(frac .. "000000000", 2, 10)) or 0
  local out
  if offset == 0 then
    out = sub(s, 1, 10) .. "T" .. hh .. ":" .. mi .. ":" .. ss .. frac .. "Z"
  else
    local days = floor(epoch / 86400)
    local rem = epoch - days * 86400
    local y, m, d = civil_from_days(days)
    if y < 1 or y > 9999 then return nil end
    out = format("%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, m, d, floor(rem / 3600),
      floor(rem % 3600 / 60), rem % 60, frac)
  end
  return out, epoch, nanos
end

-- ---------------------------------------------------------------- addresses

-- Dotted quad without leading zeros.
local function ipv4(s)
  local a, b, c, d = match(s, "^([0-9]+)%.([0-9]+)%.([0-9]+)%.([0-9]+)$")
  if not a then return false end
  for _, o in ipairs({ a, b, c, d }) do
    if #o > 3 or tonumber(o) > 255 or (#o > 1 and byte(o, 1) == 48) then return false end
  end
  return true
end

-- IPv6 literal as Python's ipaddress.IPv6Address parses it; no zone id, no brackets.
local function ipv6(s)
  if #s > 45 or not find(s, ":", 1, true) or find(s, "[^%x:.]") then return false end
  local head, tail = s, nil
  local dc = find(s, "::", 1, true)
  if dc then
    head, tail = sub(s, 1, dc - 1), sub(s, dc + 2)
    if find(tail, "::", 1, true) then return false end
  end
  local groups = 0
  local function count(part, last)
    if part == "" then return true end
    local pieces = {}
    for p in gmatch(part .. ":", "([^:]*):") do pieces[#pieces + 1] = p end
    for i, p in ipairs(pieces) do
      if last and i == #pieces and find(p, ".", 1, true) then
        if not ipv4(p) then return false end
        groups = groups + 2
      elseif #p >= 1 and #p <= 4 and not find(p, "[^%x]") then
        groups = groups + 1
      else
        return false
      end
    end
    return true
  end
  if dc then
    if not count(head, false) or not count(tail, true) then return false end
    return groups <= 7
  end
  if not count(head, true) then return false end
  return groups == 8
end

-- `s` when it is an IPv4 or IPv6 literal (returned as written, not re-canonicalised), else nil.
function M.ip_literal(s)
  if type(s) ~= "string" or s == "" then return nil end
  if ipv4(s) or ipv6(s) then return s end
  return nil
end

function M.is_ip(s)
  return M.ip_literal(s) ~= nil
end

local function port(text)
  if #text == 0 or #text > 5 or find(text, "[^0-9]") then return nil end
  local p = tonumber(text)
  if p > 65535 then return nil end
  return p
end

-- A client address as Vault logs it: `ip`, `ipv4:port`, `[ipv6]:port` or `[ipv6]` -> ip, port.
-- Anything else (a host name, a bad port) yields nil, nil.
function M.split_address(addr)
  if M.ip_literal(addr) then return addr, nil end
  if sub(addr, 1, 1) == "[" then
    local close = find(addr, "]", 1, true)
    if not close then return nil, nil end
    local host, rest = sub(addr, 2, close - 1), sub(addr, close + 1)
    if not find(host, ":", 1, true) or not M.ip_literal(host) then return nil, nil end
    if rest == "" then return host, nil end
    if sub(rest, 1, 1) ~= ":" then return nil, nil end
    local p = port(sub(rest, 2))
    if p then return host, p end
    return nil, nil
  end
  local host, rest = match(addr, "^([^:]*):(.*)$")
  if host and not find(rest, ":", 1, true) and ipv4(host) then
    local p = port(rest)
    if p then return host, p end
  end
  return nil, nil
end

-- ---------------------------------------------------------------- the raw line

-- tools/secretsight/schema/dispositions.yml `max_line_bytes`.
M.MAX_LINE_BYTES = 67108864

-- An embedded JSON document (lookup-events `CloudTrailEvent`, AKS `properties.log`) -> value,
-- or nil and the item saying why not.
function M.decode_embedded(text)
  local v, _, kind = json.decode(text)
  if v == nil then
    return nil, { dead_letter = kind == "utf8" and "invalid_utf8" or "malformed_json" }
  end
  return v
end

-- The raw line -> its object, or nil and the item saying why not, checked in the order
-- docs/normalization.md gives ("The line").
function M.decode_line(raw)
  if #raw > M.MAX_LINE_BYTES then return nil, { dead_letter = "line_too_long" } end
  if not find(raw, "[^ \t\r\n]") then return nil, { skip = "empty_line" } end
  if not json.valid_utf8(raw) then return nil, { dead_letter = "invalid_utf8" } end
  local v, bad = M.decode_embedded(raw)
  if v == nil then return nil, bad end
  if not M.is_object(v) then return nil, { dead_letter = "not_an_object" } end
  return v
end

-- ---------------------------------------------------------------- the Fluent Bit side

-- Turn normalizer items into what cb_filter returns. Events are emitted as they are (nested
-- tables); skips and dead letters as {skip=code} / {dead_letter=code} plus where the line came
-- from (file path and offset when the tail input adds them) but never the line itself: it may
-- carry secret values. One event: its own time becomes the record time (time_as_table).
-- Several records: Fluent Bit gives a split record one shared timestamp, so the read time stays.
function M.filter_result(items, source, timestamp, record)
  local n = #items
  if n == 0 then return -1, timestamp, record end
  local out = {}
  for i = 1, n do
    local it = items[i]
    if it.event then
      out[i] = it.event
    else
      local r = { source = source }
      if it.skip then r.skip = it.skip else r.dead_letter = it.dead_letter end
      if record.file ~= nil then r.file = record.file end
      if record.offset ~= nil then r.offset = record.offset end
      out[i] = r
    end
  end
  if n == 1 then
    local ev = items[1].event
    if ev then
      local _, sec, nsec = M.rfc3339_utc(ev["@timestamp"])
      if sec then
        if type(timestamp) == "table" then return 1, { sec = sec, nsec = nsec }, out[1] end
        return 1, sec + nsec / 1e9, out[1]
      end
    end
    return 2, timestamp, out[1]
  end
  return 2, timestamp, out
end

-- The whole callback body: the raw line is `record.log` (tail input without a parser; a record
-- without it, e.g. from a tail input given a parser, is a dead letter `missing_field`). Any Lua
-- error is caught here too (`unsupported_shape`): with protected_mode alone Fluent Bit would
-- ship the unmodified record, i.e. the raw line with whatever secrets it holds.
function M.run(source, normalize, timestamp, record)
  local raw = record.log
  local items
  if type(raw) ~= "string" then
    items = { { dead_letter = "missing_field" } }
  else
    local ok, res = pcall(normalize, raw)
    items = ok and res or { { dead_letter = "unsupported_shape" } }
  end
  return M.filter_result(items, source, timestamp, record)
end

-- normalize(raw line) -> list of items, for a source module exposing normalize_object(o):
-- the line checks (decode_line) once, here, for every source.
function M.line_normalizer(normalize_object)
  return function(raw)
    local o, bad = M.decode_line(raw)
    if not o then return { bad } end
    return normalize_object(o)
  end
end

return M
