-- Fluent Bit Lua filter for a file whose source is not known in advance (`source: auto`):
-- detects Vault, CloudTrail or Kubernetes from the shape of each line, then normalizes it like
-- vault.lua / cloudtrail.lua / kubernetes.lua would.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path

local common = require("common")
local normalize = require("normalize_auto").normalize

function cb_filter(tag, timestamp, record)
  return common.run("auto", normalize, timestamp, record)
end
