-- Typed reads of decoded JSON for the normalizers. A read either returns a value (nil when the
-- field is absent, null or "") or stops the normalization of the current event with a reason
-- code from tools/secretsight/schema/dispositions.yml (missing_field, wrong_type, ...).

local common = require("common")

local type, error, pcall = type, error, pcall
local getmetatable, setmetatable = getmetatable, setmetatable
local is_object, is_array = common.is_object, common.is_array
local null = require("json").null

local M = {}

local Stop = {} -- metatable marking a disposition raised by fail()

function M.fail(code)
  error(setmetatable({ code = code }, Stop), 0)
end
local fail = M.fail

-- Run fn(...) and return its item; a fail(code) becomes {dead_letter = code}. Any other Lua error
-- (a bug, not the input's fault) is also dead-lettered, as unsupported_shape, rather than
-- raised: Fluent Bit would otherwise pass the raw record, secrets and all, down the pipeline.
-- (The error text is not kept: it could quote a value from the line.)
function M.guard(fn, ...)
  local ok, res = pcall(fn, ...)
  if ok then return res end
  if type(res) == "table" and getmetatable(res) == Stop then return { dead_letter = res.code } end
  return { dead_letter = "unsupported_shape" }
end

local function raw(t, k)
  local v = t[k]
  if v == null then return nil end
  return v
end

function M.opt_str(t, k)
  local v = raw(t, k)
  if v == nil then return nil end
  if type(v) ~= "string" then fail("wrong_type") end
  if v == "" then return nil end
  return v
end

function M.req_str(t, k)
  local v = M.opt_str(t, k)
  if v == nil then fail("missing_field") end
  return v
end

function M.opt_obj(t, k)
  local v = raw(t, k)
  if v == nil then return nil end
  if not is_object(v) then fail("wrong_type") end
  return v
end

function M.req_obj(t, k)
  local v = M.opt_obj(t, k)
  if v == nil then fail("missing_field") end
  return v
end

function M.opt_array(t, k)
  local v = raw(t, k)
  if v == nil then return nil end
  if not is_array(v) then fail("wrong_type") end
  return v
end

function M.opt_int(t, k)
  local v = raw(t, k)
  if v == nil then return nil end
  if common.int(v) == nil then fail("wrong_type") end
  return v
end

function M.opt_bool(t, k)
  local v = raw(t, k)
  if v == nil then return nil end
  if type(v) ~= "boolean" then fail("wrong_type") end
  return v
end

-- A list of strings: sorted and de-duplicated, or in logged order; nil when empty.
function M.opt_sorted_strings(t, k)
  local v = M.opt_array(t, k)
  if v == nil then return nil end
  for i = 1, #v do
    if type(v[i]) ~= "string" then fail("wrong_type") end
  end
  return common.sorted_strings(v)
end

function M.opt_strings(t, k)
  local v = M.opt_array(t, k)
  if v == nil then return nil end
  for i = 1, #v do
    if type(v[i]) ~= "string" then fail("wrong_type") end
  end
  return common.strings(v)
end

-- The event time as RFC 3339 UTC, or stop with missing_timestamp / invalid_timestamp.
function M.timestamp(t, k, parse)
  local v = raw(t, k)
  if v == nil or v == "" then fail("missing_timestamp") end
  if type(v) ~= "string" then fail("invalid_timestamp") end
  local out = (parse or common.rfc3339_utc)(v)
  if not out then fail("invalid_timestamp") end
  return out
end

return M
