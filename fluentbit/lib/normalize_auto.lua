-- `source: auto`: pick the source from the shape of the decoded line, in the order
-- docs/normalization.md gives (as tools/secretsight/normalize/line.py detect_source), then
-- normalize as that source does. A key counts when present, even as JSON null.

local common = require("common")
local vault = require("normalize_vault")
local cloudtrail = require("normalize_cloudtrail")
local kubernetes = require("normalize_kubernetes")

local M = {}

local VAULT_TYPES = {
  request = true, response = true, ["kmip-request"] = true, ["kmip-response"] = true,
}

function M.detect(o)
  if type(o.type) == "string" and VAULT_TYPES[o.type] then return vault end
  if o.Records ~= nil or o.Events ~= nil or (o["detail-type"] ~= nil and o.detail ~= nil) then
    return cloudtrail
  end
  if o.protoPayload ~= nil then return kubernetes end
  if common.is_object(o.properties) and o.properties.log ~= nil then return kubernetes end
  if o.eventSource ~= nil or o.eventName ~= nil then return cloudtrail end
  local api_version = o.apiVersion
  if o.kind == "Event" or o.auditID ~= nil
    or (type(api_version) == "string" and api_version:sub(1, 13) == "audit.k8s.io/") then
    return kubernetes
  end
  return nil
end

function M.normalize(raw)
  local o, bad = common.decode_line(raw)
  if not o then return { bad } end
  local source = M.detect(o)
  if not source then return { { dead_letter = "unknown_source" } } end
  return source.normalize_object(o)
end

return M
