-- Kubernetes API server audit event -> SecretSight event (docs/normalization.md, Kubernetes
-- section). Mirrors tools/secretsight/normalize/kubernetes.py check for check (the goldens are
-- the judge). Accepts audit.k8s.io v1 / v1beta1 events, the AKS wrapper
-- `{"properties":{"log": event | "<json string>"}}` and GKE Cloud Audit Logs (`protoPayload`).
-- Secret values never leave: requestObject is read only for RBAC rules and workload
-- annotations; a Secret's data, stringData and last-applied annotation are never read.

local common = require("common")
local field = require("field")
local json = require("json")

local set, is_object, is_array, get = common.set, common.is_object, common.is_array, common.get
local sub, gmatch = string.sub, string.gmatch
local null = json.null

local M = {}

local POLICY_RESOURCES = {
  roles = true, clusterroles = true, rolebindings = true, clusterrolebindings = true,
}
local WORKLOAD_RESOURCES = {
  deployments = true, replicasets = true, statefulsets = true, daemonsets = true, pods = true,
}
local ROLLOUT_RESOURCES = { deployments = true, statefulsets = true, daemonsets = true }
local SECRET_OPERATIONS = {
  get = "read", list = "list", watch = "list", create = "write", update = "write", patch = "write",
  delete = "delete", deletecollection = "delete",
}
local RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
local SECRET_PATHS = "secretsight.io/secret-paths"
local DECISION = "authorization.k8s.io/decision"
-- `user.extra` keys of bound service-account tokens (each a list of strings).
local EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
local EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
local EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
local EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
-- AKS records name the cluster in `resourceId` (upper case in diagnostic logs, camel case
-- elsewhere): an ASCII case-insensitive match, the same as the Python and VRL ones.
local AKS_CLUSTER = "/[Mm][Aa][Nn][Aa][Gg][Ee][Dd][Cc][Ll][Uu][Ss][Tt][Ee][Rr][Ss]/([^/]*)"

local function first_extra(extra, key)
  local values = field.opt_strings(extra, key)
  return values and values[1]
end

-- `user.uid` and the bound-token extras into `kubernetes.user`; the credential (event.yml
-- `credential.id`): the credential-id extra, else the pod, else none.
local function token_identity(user, ev)
  set(ev, "kubernetes.user.uid", field.opt_str(user, "uid"))
  local extra = field.opt_obj(user, "extra")
  if not extra then return end
  local credential_id = first_extra(extra, EXTRA_CREDENTIAL_ID)
  local pod_name = first_extra(extra, EXTRA_POD_NAME)
  local pod_uid = first_extra(extra, EXTRA_POD_UID)
  local node_name = first_extra(extra, EXTRA_NODE_NAME)
  set(ev, "kubernetes.user.pod_name", pod_name)
  set(ev, "kubernetes.user.node_name", node_name)
  if credential_id then
    set(ev, "credential.id", credential_id)
    local x509 = sub(credential_id, 1, 11) == "X509SHA256="
    set(ev, "credential.type", x509 and "x509_certificate" or "kubernetes_token")
  elseif pod_name then
    set(ev, "credential.id", pod_uid and (pod_name .. "/" .. pod_uid) or pod_name)
    set(ev, "credential.type", "kubernetes_token")
  end
end

local function aks_cluster(wrapper)
  local resource_id = field.opt_str(wrapper, "resourceId")
  if not resource_id then return nil end
  local name
  for n in gmatch(resource_id, AKS_CLUSTER) do name = n end
  return common.str(name)
end

-- One request logs several stages; keep ResponseComplete (ResponseStarted for watch), Panic and
-- stage-less events.
local function is_intermediate(stage, verb)
  if stage == "RequestReceived" then return true end
  if stage == "ResponseStarted" then return verb ~= "watch" end
  if stage == "ResponseComplete" then return verb == "watch" end
  return false
end

local function category_of(resource, api_group)
  if resource == "secrets" and not api_group then return "secret" end
  if POLICY_RESOURCES[resource] then return "policy" end
  if WORKLOAD_RESOURCES[resource] then return "workload" end
  return "other"
end

local function secret_path(namespace, name)
  if namespace == nil and name == nil then return "*" end
  return (namespace or "*") .. "/" .. (name or "*")
end

local function contains(list, value)
  for i = 1, #list do
    if list[i] == value then return true end
  end
  return false
end

-- Verbs a Role/ClusterRole object grants on core-group secrets (or on every resource).
local function rbac_secret_verbs(request_object)
  local rules = get(request_object, "rules")
  if not is_array(rules) then return nil end
  local verbs = setmetatable({}, json.array_mt)
  for _, rule in ipairs(rules) do
    if is_object(rule) then
      local groups, resources, rverbs = rule.apiGroups, rule.resources, rule.verbs
      if is_array(groups) and is_array(resources) and is_array(rverbs)
        and (contains(groups, "") or contains(groups, "*"))
        and (contains(resources, "secrets") or contains(resources, "*")) then
        for _, v in ipairs(rverbs) do verbs[#verbs + 1] = v end
      end
    end
  end
  return common.sorted_strings(verbs)
end

local function strip(s, chars)
  local i, j = 1, #s
  while i <= j and chars[sub(s, i, i)] do i = i + 1 end
  while j >= i and chars[sub(s, j, j)] do j = j - 1 end
  return sub(s, i, j)
end
local BLANK = { [" "] = true, ["\t"] = true }
local BLANK_COMMA = { [" "] = true, ["\t"] = true, [","] = true }

local function secret_paths(value)
  if type(value) ~= "string" then return nil end
  local paths = setmetatable({}, json.array_mt)
  for p in gmatch(value .. ",", "([^,]*),") do paths[#paths + 1] = strip(p, BLANK) end
  return common.sorted_strings(paths)
end

local function workload_fields(request_object, ev)
  local template_ann = get(request_object, "spec", "template", "metadata", "annotations")
  local restarted = get(template_ann, RESTARTED_AT)
  if type(restarted) == "string" and restarted ~= "" then
    set(ev, "kubernetes.restarted_at", restarted)
  end
  local declared = get(request_object, "metadata", "annotations", SECRET_PATHS)
  if type(declared) ~= "string" or strip(declared, BLANK_COMMA) == "" then
    declared = get(template_ann, SECRET_PATHS)
  end
  set(ev, "kubernetes.secret_paths", secret_paths(declared))
end

-- The parts every event shares (audit.k8s.io and GKE alike).
local function assemble(ev, ts, event_id, verb, outcome, ref, username, groups, source_ips,
                        user_agent)
  local category = category_of(ref.resource, ref.api_group)
  set(ev, "@timestamp", ts)
  set(ev, "event.dataset", "kubernetes.audit")
  set(ev, "event.action", verb)
  set(ev, "event.outcome", outcome)
  set(ev, "event.id", event_id)
  set(ev, "secretsight.category", category)
  if category == "secret" then
    set(ev, "secret.operation", SECRET_OPERATIONS[verb] or "other")
    set(ev, "secret.path", secret_path(ref.namespace, ref.name))
  end
  set(ev, "user.id", username)
  set(ev, "user.name", username)
  set(ev, "user.roles", groups and common.sorted_strings(setmetatable(groups, json.array_mt)))
  if source_ips then set(ev, "source.ip", common.ip_literal(source_ips[#source_ips])) end
  set(ev, "user_agent.original", user_agent)
  if next(ref) then set(ev, "kubernetes.object_ref", ref) end
  return { event = ev }
end

local TIME_FIELDS = { "requestReceivedTimestamp", "stageTimestamp", "timestamp" }

local function event_of(o, wrapper_time, cluster)
  local verb = field.req_str(o, "verb")
  local stage = field.opt_str(o, "stage")
  if is_intermediate(stage, verb) then return { skip = "kubernetes_intermediate_stage" } end
  local raw_ts = wrapper_time
  for _, k in ipairs(TIME_FIELDS) do
    local v = o[k]
    if v ~= nil and v ~= null and v ~= "" then raw_ts = v; break end
  end
  local ts = field.timestamp({ t = raw_ts }, "t")
  local audit_id = field.req_str(o, "auditID")

  local level = field.opt_str(o, "level")
  local request_uri = field.opt_str(o, "requestURI")
  local user_agent = field.opt_str(o, "userAgent")
  local source_ips = field.opt_strings(o, "sourceIPs")
  local username, groups, imp_user, imp_groups
  local ev = {}
  local user = field.opt_obj(o, "user")
  if user then
    username = field.opt_str(user, "username")
    groups = field.opt_strings(user, "groups")
    token_identity(user, ev)
  end
  set(ev, "orchestrator.cluster.name", cluster)
  local imp = field.opt_obj(o, "impersonatedUser")
  if imp then
    imp_user = field.opt_str(imp, "username")
    imp_groups = field.opt_sorted_strings(imp, "groups")
  end
  local ref = {}
  local oref = field.opt_obj(o, "objectRef")
  if oref then
    ref.resource = field.opt_str(oref, "resource")
    ref.subresource = field.opt_str(oref, "subresource")
    ref.namespace = field.opt_str(oref, "namespace")
    ref.name = field.opt_str(oref, "name")
    ref.api_group = field.opt_str(oref, "apiGroup")
  end
  local code
  local status = field.opt_obj(o, "responseStatus")
  if status then code = field.opt_int(status, "code") end
  local decision
  local annotations = field.opt_obj(o, "annotations")
  if annotations then decision = field.opt_str(annotations, DECISION) end

  local outcome = "unknown"
  if (code ~= nil and code >= 400) or decision == "forbid" then
    outcome = "failure"
  elseif code ~= nil then
    outcome = "success"
  end

  set(ev, "kubernetes.stage", stage)
  set(ev, "kubernetes.verb", verb)
  set(ev, "kubernetes.level", level)
  set(ev, "kubernetes.response_code", code)
  set(ev, "kubernetes.decision", decision)
  set(ev, "kubernetes.impersonated_user", imp_user)
  set(ev, "kubernetes.impersonated_groups", imp_groups)
  set(ev, "kubernetes.request_uri", request_uri)
  set(ev, "kubernetes.source_ips", source_ips)
  -- Request-level bodies: read only the few facts the schema names, never the object.
  local resource = ref.resource
  if (verb == "create" or verb == "update" or verb == "patch")
    and (resource == "roles" or resource == "clusterroles") then
    set(ev, "kubernetes.rbac_secret_verbs", rbac_secret_verbs(o.requestObject))
  elseif (verb == "update" or verb == "patch") and ROLLOUT_RESOURCES[resource] then
    workload_fields(o.requestObject, ev)
  end
  return assemble(ev, ts, audit_id, verb, outcome, ref, username, groups, source_ips, user_agent)
end

-- (namespace, name) from a GKE resourceName `group/version/[namespaces/ns/]resource/name`.
local function gke_resource(resource_name, resource)
  if not resource_name or not resource then return nil, nil end
  local segs = {}
  for s in gmatch(resource_name .. "/", "([^/]*)/") do segs[#segs + 1] = s end
  if #segs >= 5 and segs[3] == "namespaces" and segs[5] == resource then
    return common.str(segs[4]), common.str(segs[6])
  end
  if #segs >= 3 and segs[3] == resource then return nil, common.str(segs[4]) end
  return nil, nil
end

-- A GKE Cloud Audit Log entry (LogEntry with an AuditLog `protoPayload`).
local function gke_event(entry)
  local pp = entry.protoPayload
  if not is_object(pp) then field.fail("wrong_type") end
  if pp.serviceName ~= "k8s.io" then field.fail("unsupported_shape") end
  local method = field.req_str(pp, "methodName")
  local parts = {}
  for s in gmatch(method .. ".", "([^.]*)%.") do parts[#parts + 1] = s end
  if #parts < 3 or parts[1] ~= "io" or parts[2] ~= "k8s" or parts[#parts] == "" then
    field.fail("unsupported_shape")
  end
  local verb = parts[#parts]
  local ts = field.timestamp(entry, "timestamp")
  local insert_id = field.req_str(entry, "insertId")

  local ref = {}
  if #parts >= 6 then -- io.k8s.<group>.<version>.<resource>[.<subresource>].<verb>
    ref.api_group = parts[3] ~= "core" and common.str(parts[3]) or nil
    ref.resource = common.str(parts[5])
    if #parts >= 7 then ref.subresource = common.str(parts[6]) end
  end
  ref.namespace, ref.name = gke_resource(field.opt_str(pp, "resourceName"), ref.resource)
  local principal, caller_ip, user_agent
  local authn = field.opt_obj(pp, "authenticationInfo")
  if authn then principal = field.opt_str(authn, "principalEmail") end
  local meta = field.opt_obj(pp, "requestMetadata")
  if meta then
    caller_ip = field.opt_str(meta, "callerIp")
    user_agent = field.opt_str(meta, "callerSuppliedUserAgent")
  end
  local code
  local status = field.opt_obj(pp, "status")
  if status then code = field.opt_int(status, "code") end
  local decision
  local labels = field.opt_obj(entry, "labels")
  if labels then decision = field.opt_str(labels, DECISION) end
  local grants = field.opt_array(pp, "authorizationInfo")
  if grants then
    local any, all = false, true
    for i = 1, #grants do
      if not is_object(grants[i]) then field.fail("wrong_type") end
      local granted = field.opt_bool(grants[i], "granted")
      if granted ~= nil then
        any = true
        if not granted then all = false end
      end
    end
    if decision == nil and any then decision = all and "allow" or "forbid" end
  end

  local cluster
  local resource_block = field.opt_obj(entry, "resource")
  if resource_block then
    local resource_labels = field.opt_obj(resource_block, "labels")
    if resource_labels then cluster = field.opt_str(resource_labels, "cluster_name") end
  end

  local outcome = "unknown"
  if (code ~= nil and code ~= 0) or decision == "forbid" then
    outcome = "failure"
  elseif code == 0 then
    outcome = "success"
  end
  local ev = {}
  set(ev, "orchestrator.cluster.name", cluster)
  set(ev, "kubernetes.verb", verb)
  set(ev, "kubernetes.decision", decision)
  local source_ips = caller_ip and setmetatable({ caller_ip }, json.array_mt) or nil
  set(ev, "kubernetes.source_ips", source_ips)
  return assemble(ev, ts, insert_id, verb, outcome, ref, principal, nil, source_ips, user_agent)
end

function M.normalize_object(o)
  if o.protoPayload ~= nil then return { field.guard(gke_event, o) } end
  local props = o.properties
  if is_object(props) and props.log ~= nil then
    local log = props.log
    if log == null or log == "" then return { { dead_letter = "missing_field" } } end
    if type(log) == "string" then
      local bad
      log, bad = common.decode_embedded(log)
      if log == nil then return { bad } end
      if not is_object(log) then return { { dead_letter = "not_an_object" } } end
    elseif not is_object(log) then
      return { { dead_letter = "wrong_type" } }
    end
    -- The wrapper's resourceId is read (and type-checked) before the event, as in Python.
    return { field.guard(function() return event_of(log, o.time, aks_cluster(o)) end) }
  end
  return { field.guard(event_of, o) }
end

M.normalize = common.line_normalizer(M.normalize_object)

return M
