-- HashiCorp Vault audit entry -> SecretSight event (docs/normalization.md, Vault section).
-- Mirrors tools/secretsight/normalize/vault.py check for check (the goldens are the judge).
-- Secret values never leave: request.data, response.data and tokens are never read.

local common = require("common")
local field = require("field")

local set = common.set
local find, sub = string.find, string.sub

local M = {}

-- KV v2 API segments right after the mount, taken out of `secret.path`.
local KV2_SEGMENTS = {
  data = true, metadata = true, delete = true, undelete = true, destroy = true, subkeys = true,
}
-- `auth.metadata` keys copied to `vault.auth.metadata` (event.yml `vault.auth.metadata.*`): an
-- allow list, because metadata can hold values users or claim mappings set; no other key is read.
local AUTH_METADATA_KEYS = {
  "role", "role_name", "service_account_name", "service_account_namespace", "service_account_uid",
  "email", "username", "name",
}
-- An audit device that HMACs a header logs its hash with this prefix.
local HMAC_PREFIX = "hmac-sha256:"
local WRITE_OPS = { create = true, update = true, patch = true }
local GENERIC_OP = {
  read = "read", list = "list", create = "write", update = "write", patch = "write",
  delete = "delete",
}

local function starts(s, prefix)
  return sub(s, 1, #prefix) == prefix
end

local function is_audit_path(path)
  return starts(path, "sys/audit/") or starts(path, "sys/audit-hash/") or path == "sys/audit"
    or path == "sys/audit-hash"
end

local function category_of(path)
  if starts(path, "sys/") or path == "sys" then
    if is_audit_path(path) then return "audit" end
    if starts(path, "sys/policy/") or starts(path, "sys/policies/") or path == "sys/policy"
      or path == "sys/policies" then
      return "policy"
    end
    return "other"
  end
  if starts(path, "auth/") then return "auth" end
  if starts(path, "identity/") then return "other" end
  return "secret"
end

-- (secret.operation, secret.path, is_kv2) for a path on a secrets engine mount.
local function secret_fields(op, path, mount_type, mount_point)
  local mount_len = -1
  if mount_point then
    local mp = sub(mount_point, -1) == "/" and mount_point or (mount_point .. "/")
    if starts(path, mp) then mount_len = #mp end
  end
  if mount_len < 0 then
    local slash = find(path, "/", 1, true)
    mount_len = slash or #path
  end
  local rest = sub(path, mount_len + 1)
  local slash = find(rest, "/", 1, true)
  local seg = slash and sub(rest, 1, slash - 1) or rest
  local tail = slash and sub(rest, slash + 1) or ""
  if KV2_SEGMENTS[seg] and (mount_type == nil or mount_type == "kv") then
    local spath = sub(path, 1, mount_len) .. tail
    local sop
    if seg == "data" then
      sop = GENERIC_OP[op] or "other"
    elseif seg == "metadata" or seg == "subkeys" then
      sop = op == "read" and "describe" or (GENERIC_OP[op] or "other")
    elseif seg == "undelete" then
      sop = WRITE_OPS[op] and "write" or (GENERIC_OP[op] or "other")
    else -- delete/, destroy/
      sop = WRITE_OPS[op] and "delete" or (GENERIC_OP[op] or "other")
    end
    return sop, spath, true
  end
  if op == "update" or op == "create" then
    for segment in string.gmatch(rest .. "/", "([^/]*)/") do
      if segment == "rotate-root" or segment == "rotate-role" then return "rotate", path, false end
    end
  end
  return GENERIC_OP[op] or "other", path, false
end

-- The clear user-agent header; nil when absent or HMAC'd (a hash is not a user agent).
local function user_agent(headers)
  local ua = headers["user-agent"]
  if ua == nil or ua == common.null or ua == "" then return nil end
  if common.is_array(ua) then
    for i = 1, #ua do
      if type(ua[i]) ~= "string" then field.fail("wrong_type") end
    end
    ua = ua[1]
  elseif type(ua) ~= "string" then
    field.fail("wrong_type")
  end
  ua = common.str(ua)
  if ua == nil or sub(ua, 1, #HMAC_PREFIX) == HMAC_PREFIX then return nil end
  return ua
end

-- The allow-listed keys of `auth.metadata` (each a string when present); nil when none.
local function auth_metadata(auth)
  local metadata = field.opt_obj(auth, "metadata")
  if metadata == nil then return nil end
  local out
  for _, key in ipairs(AUTH_METADATA_KEYS) do
    local value = field.opt_str(metadata, key)
    if value then
      out = out or {}
      out[key] = value
    end
  end
  return out
end

local function normalize_entry(rec)
  local etype = field.req_str(rec, "type")
  if etype ~= "response" and etype ~= "request" then
    if etype == "kmip-request" or etype == "kmip-response" then
      return { skip = "vault_kmip_entry" }
    end
    field.fail("unsupported_shape")
  end
  local req = field.req_obj(rec, "request")
  if etype == "request" then
    local p = req.path
    if not (type(p) == "string" and is_audit_path(p)) then
      return { skip = "vault_request_entry" }
    end
  end

  local ts = field.timestamp(rec, "time")
  local rid = field.req_str(req, "id")
  local op = field.req_str(req, "operation")
  local path = field.req_str(req, "path")

  -- Every field below is type-checked whenever present, even when a fallback wins.
  local req_mount_type = field.opt_str(req, "mount_type")
  local mount_point = field.opt_str(req, "mount_point")
  local remote_address = field.opt_str(req, "remote_address")
  local err = field.opt_str(rec, "error")
  local remote_port = field.opt_int(req, "remote_port")
  local namespace = field.opt_obj(req, "namespace")
  local headers = field.opt_obj(req, "headers")
  local auth = field.opt_obj(rec, "auth")
  local response = field.opt_obj(rec, "response")
  local typo_response = field.opt_obj(rec, " response") -- a documented Vault typo key
  if response == nil then response = typo_response end

  local ev = {}
  local resp_mount_type, created_ttl, created_policies
  if response then
    resp_mount_type = field.opt_str(response, "mount_type")
    local rauth = field.opt_obj(response, "auth")
    if rauth then
      created_ttl = field.opt_int(rauth, "token_ttl")
      created_policies = field.opt_sorted_strings(rauth, "policies")
    end
  end
  local mount_type = req_mount_type or resp_mount_type

  local category = category_of(path)
  set(ev, "@timestamp", ts)
  set(ev, "event.dataset", "vault.audit")
  set(ev, "event.action", op)
  set(ev, "event.outcome", err and "failure" or (etype == "response" and "success" or "unknown"))
  set(ev, "event.id", rid)
  set(ev, "secretsight.category", category)
  local kv2 = false
  if category == "secret" then
    local sop, spath
    sop, spath, kv2 = secret_fields(op, path, mount_type, mount_point)
    set(ev, "secret.operation", sop)
    set(ev, "secret.path", spath)
  end

  if auth then
    local accessor = field.opt_str(auth, "accessor")
    local display_name = field.opt_str(auth, "display_name")
    local token_type = field.opt_str(auth, "token_type")
    local entity_id = field.opt_str(auth, "entity_id")
    local policies = field.opt_sorted_strings(auth, "policies")
    local token_policies = field.opt_sorted_strings(auth, "token_policies")
    local identity_policies = field.opt_sorted_strings(auth, "identity_policies")
    local token_ttl = field.opt_int(auth, "token_ttl")
    local metadata = auth_metadata(auth)
    -- The entity is the principal; tokens without one (root, entity-less, pre-identity Vault)
    -- fall back to the accessor (event.yml `user.id`). The accessor is the credential.
    set(ev, "user.id", entity_id or accessor)
    if accessor then
      set(ev, "credential.id", accessor)
      set(ev, "credential.type", "vault_token")
    end
    if metadata then
      set(ev, "vault.auth.role", metadata.role or metadata.role_name)
      set(ev, "vault.auth.metadata", metadata)
    end
    set(ev, "vault.identity_policies", identity_policies)
    set(ev, "user.name", display_name)
    set(ev, "user.roles", policies)
    set(ev, "vault.token_type", token_type)
    set(ev, "vault.token_ttl", token_ttl)
    set(ev, "vault.token_policies", token_policies)
    set(ev, "vault.entity_id", entity_id)
  end

  if remote_address or remote_port ~= nil then
    local ip, port
    if remote_address then ip, port = common.split_address(remote_address) end
    if remote_port ~= nil then port = remote_port end
    set(ev, "source.ip", ip)
    set(ev, "source.port", port)
  end

  if headers then set(ev, "user_agent.original", user_agent(headers)) end

  set(ev, "vault.entry_type", etype)
  set(ev, "vault.path", path)
  set(ev, "vault.mount_type", mount_type)
  set(ev, "vault.mount_point", mount_point)
  if kv2 then set(ev, "vault.kv_version", 2) end
  if namespace then
    local ns_path = field.opt_str(namespace, "path")
    local ns_id = field.opt_str(namespace, "id")
    set(ev, "vault.namespace", ns_path or ns_id)
  end
  set(ev, "vault.error", err)
  set(ev, "vault.created_token.ttl", created_ttl)
  set(ev, "vault.created_token.policies", created_policies)
  return { event = ev }
end

function M.normalize_object(o)
  return { field.guard(normalize_entry, o) }
end

M.normalize = common.line_normalizer(M.normalize_object)

return M
