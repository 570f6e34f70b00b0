-- Fluent Bit Lua filter: AWS CloudTrail lines (S3 Records files, single events, EventBridge
-- envelopes, lookup-events output)
-- -> SecretSight normalized events, skips and dead letters (see README.md).
--
-- Config: name lua, script cloudtrail.lua, call cb_filter, time_as_table true; the tail input
-- has no parser, so record.log is the raw line.
-- The shared code in lib/ is found relative to this file: Fluent Bit loads `script` with
-- luaL_loadfile, so debug.getinfo gives its path, and lib/ is prepended to package.path.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path

local common = require("common")
local normalize = require("normalize_cloudtrail").normalize

function cb_filter(tag, timestamp, record)
  return common.run("cloudtrail", normalize, timestamp, record)
end
