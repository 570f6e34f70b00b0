"""Kubernetes API server audit events (v1, v1beta1; AKS and GKE wrappers) -> normalized events
(docs/normalization.md#kubernetes)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from secretsight.normalize.codes import DeadLetter
from secretsight.normalize.fields import (
    ip_literal,
    opt_bool,
    opt_int,
    opt_list,
    opt_obj,
    opt_str,
    opt_str_list,
    req_str,
    sorted_set,
    timestamp,
)

POLICY_RESOURCES = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings"})
WORKLOAD_RESOURCES = frozenset({"deployments", "replicasets", "statefulsets", "daemonsets", "pods"})
ROLLOUT_RESOURCES = frozenset({"deployments", "statefulsets", "daemonsets"})
SECRET_OPERATIONS = {
    "get": "read",
    "list": "list",
    "watch": "list",
    "create": "write",
    "update": "write",
    "patch": "write",
    "delete": "delete",
    "deletecollection": "delete",
}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
SECRET_PATHS = "secretsight.io/secret-paths"
DECISION = "authorization.k8s.io/decision"
# `user.extra` keys of bound service-account tokens (each a list of strings).
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
# AKS diagnostic records name the cluster in `resourceId` (upper case in diagnostic logs,
# camel case elsewhere): an ASCII-only case-insensitive match, the same in VRL and Lua.
_AKS_CLUSTER = re.compile("/" + "".join(f"[{c.upper()}{c}]" for c in "managedclusters") + "/([^/]*)")


def _is_intermediate(stage: str | None, verb: str) -> bool:
    if stage == "RequestReceived":
        return True
    if stage == "ResponseStarted":
        return verb != "watch"
    if stage == "ResponseComplete":
        return verb == "watch"
    return False


def _category(resource: str | None, api_group: str | None) -> str:
    if resource == "secrets" and not api_group:
        return "secret"
    if resource in POLICY_RESOURCES:
        return "policy"
    if resource in WORKLOAD_RESOURCES:
        return "workload"
    return "other"


def _secret_path(namespace: str | None, name: str | None) -> str:
    if namespace is None and name is None:
        return "*"
    return f"{namespace or '*'}/{name or '*'}"


def _dig(obj: Any, *keys: str) -> Any:
    """A nested value of a free-form object; None when any step is missing or not an object."""
    for key in keys:
        if type(obj) is not dict:
            return None
        obj = obj.get(key)
    return obj


def _rbac_secret_verbs(request_object: Any) -> list[str] | None:
    rules = _dig(request_object, "rules")
    if type(rules) is not list:
        return None
    verbs: set[str] = set()
    for rule in rules:
        if type(rule) is not dict:
            continue
        groups, resources, rverbs = rule.get("apiGroups"), rule.get("resources"), rule.get("verbs")
        if type(groups) is not list or type(resources) is not list or type(rverbs) is not list:
            continue
        if ("" in groups or "*" in groups) and ("secrets" in resources or "*" in resources):
            verbs.update(v for v in rverbs if type(v) is str and v)
    return sorted(verbs) or None


def _secret_paths(value: Any) -> list[str] | None:
    if type(value) is not str:
        return None
    paths = {p.strip(" \t") for p in value.split(",")}
    paths.discard("")
    return sorted(paths) or None


def _workload_fields(request_object: Any, kube: dict[str, Any]) -> None:
    template_ann = _dig(request_object, "spec", "template", "metadata", "annotations")
    restarted = _dig(template_ann, RESTARTED_AT)
    if type(restarted) is str and restarted:
        kube["restarted_at"] = restarted
    declared = _dig(request_object, "metadata", "annotations", SECRET_PATHS)
    if type(declared) is not str or not declared.strip(" \t,"):
        declared = _dig(template_ann, SECRET_PATHS)
    paths = _secret_paths(declared)
    if paths:
        kube["secret_paths"] = paths


def _object_ref(
    resource: str | None,
    subresource: str | None,
    namespace: str | None,
    name: str | None,
    api_group: str | None,
) -> dict[str, str]:
    ref = {}
    if resource:
        ref["resource"] = resource
    if subresource:
        ref["subresource"] = subresource
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if api_group:
        ref["api_group"] = api_group
    return ref


def _assemble(
    ts: str,
    event_id: str,
    verb: str,
    outcome: str,
    ref: dict[str, str],
    username: str | None,
    groups: list[str] | None,
    source_ips: list[str] | None,
    user_agent: str | None,
    kube: dict[str, Any],
    credential: dict[str, str] | None = None,
    cluster: str | None = None,
) -> dict[str, Any]:
    resource = ref.get("resource")
    category = _category(resource, ref.get("api_group"))
    event: dict[str, Any] = {
        "@timestamp": ts,
        "event": {
            "dataset": "kubernetes.audit",
            "action": verb,
            "outcome": outcome,
            "id": event_id,
        },
        "secretsight": {"category": category},
    }
    if category == "secret":
        event["secret"] = {
            "operation": SECRET_OPERATIONS.get(verb, "other"),
            "path": _secret_path(ref.get("namespace"), ref.get("name")),
        }
    user: dict[str, Any] = {}
    if username:
        user["id"] = username
        user["name"] = username
    roles = sorted_set(groups)
    if roles:
        user["roles"] = roles
    if user:
        event["user"] = user
    if credential:
        event["credential"] = credential
    if cluster:
        event["orchestrator"] = {"cluster": {"name": cluster}}
    if source_ips:
        ip = ip_literal(source_ips[-1])
        if ip is not None:
            event["source"] = {"ip": ip}
    if user_agent:
        event["user_agent"] = {"original": user_agent}
    event["kubernetes"] = kube
    return event


def _first_extra(extra: dict[str, Any], key: str) -> str | None:
    values = opt_str_list(extra, key)
    return values[0] if values else None


def _token_identity(user: dict[str, Any], kube: dict[str, Any]) -> dict[str, str]:
    """`user.uid` and the bound-token extras into `kubernetes.user`; the credential
    (event.yml `credential.id`): the credential-id extra, else the pod, else none."""
    kube_user: dict[str, str] = {}
    uid = opt_str(user, "uid")
    if uid:
        kube_user["uid"] = uid
    extra = opt_obj(user, "extra")
    credential: dict[str, str] = {}
    if extra is not None:
        credential_id = _first_extra(extra, EXTRA_CREDENTIAL_ID)
        pod_name = _first_extra(extra, EXTRA_POD_NAME)
        pod_uid = _first_extra(extra, EXTRA_POD_UID)
        node_name = _first_extra(extra, EXTRA_NODE_NAME)
        if pod_name:
            kube_user["pod_name"] = pod_name
        if node_name:
            kube_user["node_name"] = node_name
        if credential_id:
            x509 = credential_id.startswith("X509SHA256=")
            kind = "x509_certificate" if x509 else "kubernetes_token"
            credential = {"id": credential_id, "type": kind}
        elif pod_name:
            pod = f"{pod_name}/{pod_uid}" if pod_uid else pod_name
            credential = {"id": pod, "type": "kubernetes_token"}
    if kube_user:
        kube["user"] = kube_user
    return credential


def _aks_cluster(wrapper: dict[str, Any]) -> str | None:
    resource_id = opt_str(wrapper, "resourceId")
    if not resource_id:
        return None
    names = _AKS_CLUSTER.findall(resource_id)
    return (names[-1] or None) if names else None  # the last: the resource itself


def normalize_event(
    ev: dict[str, Any], wrapper_time: Any = None, cluster: str | None = None
) -> dict[str, Any]:
    verb = req_str(ev, "verb")
    stage = opt_str(ev, "stage")
    if _is_intermediate(stage, verb):
        return {"skip": "kubernetes_intermediate_stage"}
    raw_ts = None
    for key in ("requestReceivedTimestamp", "stageTimestamp", "timestamp"):
        value = ev.get(key)
        if value is not None and value != "":
            raw_ts = value
            break
    else:
        raw_ts = wrapper_time
    ts = timestamp(raw_ts)
    audit_id = req_str(ev, "auditID")

    level = opt_str(ev, "level")
    request_uri = opt_str(ev, "requestURI")
    user_agent = opt_str(ev, "userAgent")
    source_ips = opt_str_list(ev, "sourceIPs")
    username = groups = imp_user = imp_groups = None
    user = opt_obj(ev, "user")
    kube: dict[str, Any] = {}
    credential: dict[str, str] = {}
    if user is not None:
        username = opt_str(user, "username")
        groups = opt_str_list(user, "groups")
        credential = _token_identity(user, kube)
    imp = opt_obj(ev, "impersonatedUser")
    if imp is not None:
        imp_user = opt_str(imp, "username")
        imp_groups = opt_str_list(imp, "groups")
    resource = subresource = namespace = name = api_group = None
    oref = opt_obj(ev, "objectRef")
    if oref is not None:
        resource = opt_str(oref, "resource")
        subresource = opt_str(oref, "subresource")
        namespace = opt_str(oref, "namespace")
        name = opt_str(oref, "name")
        api_group = opt_str(oref, "apiGroup")
    code = None
    status = opt_obj(ev, "responseStatus")
    if status is not None:
        code = opt_int(status, "code")
    decision = None
    annotations = opt_obj(ev, "annotations")
    if annotations is not None:
        decision = opt_str(annotations, DECISION)

    if (code is not None and code >= 400) or decision == "forbid":
        outcome = "failure"
    elif code is not None:
        outcome = "success"
    else:
        outcome = "unknown"

    if stage:
        kube["stage"] = stage
    kube["verb"] = verb
    if level:
        kube["level"] = level
    if code is not None:
        kube["response_code"] = code
    if decision:
        kube["decision"] = decision
    if imp_user:
        kube["impersonated_user"] = imp_user
    imp_roles = sorted_set(imp_groups)
    if imp_roles:
        kube["impersonated_groups"] = imp_roles
    ref = _object_ref(resource, subresource, namespace, name, api_group)
    if ref:
        kube["object_ref"] = ref
    if request_uri:
        kube["request_uri"] = request_uri
    if source_ips:
        kube["source_ips"] = source_ips
    # Request-level bodies: read only the few facts the schema names, never the object.
    if verb in ("create", "update", "patch") and resource in ("roles", "clusterroles"):
        verbs = _rbac_secret_verbs(ev.get("requestObject"))
        if verbs:
            kube["rbac_secret_verbs"] = verbs
    elif (verb == "update" or verb == "patch") and resource in ROLLOUT_RESOURCES:
        _workload_fields(ev.get("requestObject"), kube)
    return {
        "event": _assemble(
            ts,
            audit_id,
            verb,
            outcome,
            ref,
            username,
            groups,
            source_ips,
            user_agent,
            kube,
            credential,
            cluster,
        )
    }


def _gke_resource(resource_name: str | None, resource: str | None) -> tuple[str | None, str | None]:
    """(namespace, name) from a GKE resourceName `group/version/[namespaces/ns/]resource/name`."""
    if not resource_name or not resource:
        return None, None
    segs = resource_name.split("/")
    if len(segs) >= 5 and segs[2] == "namespaces" and segs[4] == resource:
        return segs[3] or None, (segs[5] or None) if len(segs) > 5 else None
    if len(segs) >= 3 and segs[2] == resource:
        return None, (segs[3] or None) if len(segs) > 3 else None
    return None, None


def normalize_gke(entry: dict[str, Any]) -> dict[str, Any]:
    pp = entry["protoPayload"]
    if type(pp) is not dict:
        raise DeadLetter("wrong_type")
    if pp.get("serviceName") != "k8s.io":
        raise DeadLetter("unsupported_shape")
    method = req_str(pp, "methodName")
    parts = method.split(".")
    if len(parts) < 3 or parts[0] != "io" or parts[1] != "k8s" or not parts[-1]:
        raise DeadLetter("unsupported_shape")
    verb = parts[-1]
    ts = timestamp(entry.get("timestamp"))
    insert_id = req_str(entry, "insertId")

    resource = subresource = api_group = None
    if len(parts) >= 6:
        api_group = parts[2] if parts[2] != "core" else None
        resource = parts[4] or None
        if len(parts) >= 7:
            subresource = parts[5] or None
    namespace, name = _gke_resource(opt_str(pp, "resourceName"), resource)
    principal = None
    authn = opt_obj(pp, "authenticationInfo")
    if authn is not None:
        principal = opt_str(authn, "principalEmail")
    caller_ip = user_agent = None
    meta = opt_obj(pp, "requestMetadata")
    if meta is not None:
        caller_ip = opt_str(meta, "callerIp")
        user_agent = opt_str(meta, "callerSuppliedUserAgent")
    code = None
    status = opt_obj(pp, "status")
    if status is not None:
        code = opt_int(status, "code")
    decision = None
    labels = opt_obj(entry, "labels")
    if labels is not None:
        decision = opt_str(labels, DECISION)
    grants = opt_list(pp, "authorizationInfo")
    if grants is not None:
        granted = []
        for g in grants:
            if type(g) is not dict:
                raise DeadLetter("wrong_type")
            value = opt_bool(g, "granted")
            if value is not None:
                granted.append(value)
        if decision is None and granted:
            decision = "allow" if all(granted) else "forbid"

    cluster = None
    resource_block = opt_obj(entry, "resource")
    if resource_block is not None:
        resource_labels = opt_obj(resource_block, "labels")
        if resource_labels is not None:
            cluster = opt_str(resource_labels, "cluster_name")

    if (code is not None and code != 0) or decision == "forbid":
        outcome = "failure"
    elif code == 0:
        outcome = "success"
    else:
        outcome = "unknown"
    kube: dict[str, Any] = {"verb": verb}
    if decision:
        kube["decision"] = decision
    ref = _object_ref(resource, subresource, namespace, name, api_group)
    if ref:
        kube["object_ref"] = ref
    source_ips = [caller_ip] if caller_ip else None
    if source_ips:
        kube["source_ips"] = source_ips
    return {
        "event": _assemble(
            ts,
            insert_id,
            verb,
            outcome,
            ref,
            principal,
            None,
            source_ips,
            user_agent,
            kube,
            None,
            cluster,
        )
    }


def _item(fn: Callable[..., dict[str, Any]], *args: Any) -> list[dict[str, Any]]:
    try:
        return [fn(*args)]
    except DeadLetter as dl:
        return [{"dead_letter": dl.code}]


def normalize_kubernetes(obj: dict[str, Any], loads: Callable[[str], Any]) -> list[dict[str, Any]]:
    """One parsed line: an audit event, an AKS `properties.log` wrapper or a GKE LogEntry."""
    if "protoPayload" in obj:
        return _item(normalize_gke, obj)
    props = obj.get("properties")
    if type(props) is dict and "log" in props:
        log = props["log"]
        if log is None or log == "":
            return [{"dead_letter": "missing_field"}]
        if type(log) is str:
            try:
                log = loads(log)
            except (ValueError, UnicodeDecodeError):
                return [{"dead_letter": "malformed_json"}]
            if type(log) is not dict:
                return [{"dead_letter": "not_an_object"}]
        elif type(log) is not dict:
            return [{"dead_letter": "wrong_type"}]
        try:
            cluster = _aks_cluster(obj)
        except DeadLetter as dl:
            return [{"dead_letter": dl.code}]
        return _item(normalize_event, log, obj.get("time"), cluster)
    return _item(normalize_event, obj)
