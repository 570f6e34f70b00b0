"""HashiCorp Vault audit device entries -> normalized events (docs/normalization.md#vault)."""

from __future__ import annotations

from typing import Any, NoReturn

from secretsight import schema
from secretsight.normalize.cells import LONG_MAX, LONG_MIN, NULL
from secretsight.normalize.codes import DeadLetter
from secretsight.normalize.fields import (
    sorted_strs,
    sorted_strs_cell,
    split_address,
    timestamp,
)

# KV v2 API segments right after the mount, taken out of `secret.path`.
KV2_SEGMENTS = frozenset({"data", "metadata", "delete", "undelete", "destroy", "subkeys"})
_WRITE_OPS = frozenset({"create", "update", "patch"})
# `auth.metadata` keys copied to `vault.auth.metadata`: an allow list, because metadata can
# hold values users or claim mappings set; no other key is ever read. The schema's
# `vault.auth.metadata.<key>` fields are the list (the VRL and Lua copies are tested against it).
_METADATA_PREFIX = "vault.auth.metadata."
AUTH_METADATA_KEYS = tuple(
    name[len(_METADATA_PREFIX) :] for name in schema.load().fields if name.startswith(_METADATA_PREFIX)
)
_METADATA_KEY_SET = frozenset(AUTH_METADATA_KEYS)
# The skip code of a request entry (its response repeats it), unless it configures an audit
# device (sys/audit...: `is_audit_path`), which may have no response.
REQUEST_ENTRY = "vault_request_entry"
# An audit device that HMACs a header logs its hash with this prefix.
HMAC_PREFIX = "hmac-sha256:"
_GENERIC_OP = {
    "read": "read",
    "list": "list",
    "create": "write",
    "update": "write",
    "patch": "write",
    "delete": "delete",
}


def is_audit_path(path: str) -> bool:
    """sys/audit and sys/audit-hash: audit device configuration."""
    return path.startswith("sys/audit") and (
        path.startswith(("sys/audit/", "sys/audit-hash/"))
        or path == "sys/audit"
        or path == "sys/audit-hash"
    )


def _category(path: str) -> str:
    if path.startswith("sys/") or path == "sys":
        if is_audit_path(path):
            return "audit"
        if (
            path.startswith(("sys/policy/", "sys/policies/"))
            or path == "sys/policy"
            or path == "sys/policies"
        ):
            return "policy"
        return "other"
    if path.startswith("auth/"):
        return "auth"
    if path.startswith("identity/"):
        return "other"
    return "secret"


def _secret_fields(
    op: str, path: str, mount_type: str | None, mount_point: str | None
) -> tuple[str, str, bool]:
    """(secret.operation, secret.path, is_kv2) for a path on a secrets engine mount."""
    if mount_point is not None:
        mp = mount_point if mount_point.endswith("/") else mount_point + "/"
        mount_len = len(mp) if path.startswith(mp) else -1
    else:
        mount_len = -1
    if mount_len < 0:
        slash = path.find("/")
        mount_len = slash + 1 if slash >= 0 else len(path)
    rest = path[mount_len:]
    seg, _, tail = rest.partition("/")
    if seg in KV2_SEGMENTS and (mount_type is None or mount_type == "kv"):
        spath = path[:mount_len] + tail
        if seg == "data":
            sop = _GENERIC_OP.get(op, "other")
        elif seg == "metadata" or seg == "subkeys":
            sop = "describe" if op == "read" else _GENERIC_OP.get(op, "other")
        elif seg == "undelete":
            sop = "write" if op in _WRITE_OPS else _GENERIC_OP.get(op, "other")
        else:  # delete/, destroy/
            sop = "delete" if op in _WRITE_OPS else _GENERIC_OP.get(op, "other")
        return sop, spath, True
    if (op == "update" or op == "create") and ("rotate-root" in rest or "rotate-role" in rest):
        segments = rest.split("/")
        if "rotate-root" in segments or "rotate-role" in segments:
            return "rotate", path, False
    return _GENERIC_OP.get(op, "other"), path, False


# (path, operation, mount type, mount point, entry type) -> `_route`'s fields and, for the
# event form, the run of `vault` keys they set first and the `secret` object (None: absent),
# which each event copies: paths repeat.
_Routed = tuple[str, "str | None", "str | None", bool, dict[str, Any], "dict[str, Any] | None"]
_routes: dict[tuple[str, str, str | None, str | None, str], _Routed] = {}


def _route(
    path: str, op: str, mount_type: str | None, mount_point: str | None
) -> tuple[str, str | None, str | None, bool]:
    """(category, secret.operation, secret.path, is_kv2) of a request; memoized by the caller
    because paths repeat."""
    category = _category(path)
    if category != "secret":
        return category, None, None, False
    sop, spath, kv2 = _secret_fields(op, path, mount_type, mount_point)
    return category, sop, spath, kv2


def _routed(path: str, op: str, mount_type: str | None, mount_point: str | None,
            etype: str) -> _Routed:
    """`_route`'s fields, the head of `vault` (entry type .. kv version, in the event's order)
    and `secret`."""
    category, sop, spath, kv2 = _route(path, op, mount_type, mount_point)
    head: dict[str, Any] = {"entry_type": etype, "path": path}
    if mount_type:
        head["mount_type"] = mount_type
    if mount_point:
        head["mount_point"] = mount_point
    if kv2:
        head["kv_version"] = 2
    secret = {"operation": sop, "path": spath} if sop is not None else None
    return category, sop, spath, kv2, head, secret


def _user_agent(headers: dict[str, Any]) -> str | None:
    """The clear user-agent header; None when absent or HMAC'd (a hash is not a user agent)."""
    ua = headers.get("user-agent")
    if ua is None or ua == "":
        return None
    if type(ua) is list:
        for item in ua:
            if type(item) is not str:
                raise DeadLetter("wrong_type")
        ua = ua[0] if ua else None
    elif type(ua) is not str:
        raise DeadLetter("wrong_type")
    if not ua or ua.startswith(HMAC_PREFIX):
        return None
    return ua


def normalize_vault(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """One Vault audit entry -> its item (`{"event"}`, `{"skip"}` or `{"dead_letter"}`)."""
    try:
        out = vault_record(rec)
    except DeadLetter as dl:
        return [{"dead_letter": dl.code}]
    return [{"skip": out}] if isinstance(out, str) else [{"event": out}]


def _missing_or_wrong(value: Any) -> NoReturn:
    raise DeadLetter("missing_field" if value is None or value == "" else "wrong_type")


# The schema fields a Vault event can set, in the order of `vault_cells`' values (a fixed
# table row shape: an event's absent fields are NULL cells there).
CELLS = (
    "@timestamp", "event.dataset", "event.action", "event.outcome", "event.id",
    "secretsight.category", "secret.operation", "secret.path", "user.id", "user.name",
    "credential.id", "credential.type", "user.roles", "source.ip", "source.port",
    "user_agent.original", "vault.entry_type", "vault.path", "vault.mount_type",
    "vault.mount_point", "vault.kv_version", "vault.namespace", "vault.token_type",
    "vault.token_ttl", "vault.token_policies", "vault.entity_id", "vault.identity_policies",
    "vault.auth.role", *(_METADATA_PREFIX + key for key in AUTH_METADATA_KEYS), "vault.error",
    "vault.created_token.ttl", "vault.created_token.policies",
)


_NO_METADATA = (NULL,) * len(AUTH_METADATA_KEYS)
_ROOT_NAMESPACE = {"id": "root"}  # compared only (equal: its one string, ns "root")


def vault_record(rec: dict[str, Any]) -> dict[str, Any] | str:
    """One Vault audit entry -> its normalized event, or the skip code; raises DeadLetter."""
    return _vault(rec, False)  # type: ignore[return-value]


def vault_cells(rec: dict[str, Any]) -> tuple[tuple[str, ...], tuple[Any, ...]] | str:
    """`vault_record` as (CELLS, the event's fields in `CELLS` order, each as stored: see
    `normalize.cells`), or the same skip code or DeadLetter. No event is built: `scan` loads
    the cells as the event's table row (`engine.table.rows` takes this pair as it is), and
    what needs the event makes it of that row (`engine.table.event_maker`)."""
    return _vault(rec, True)  # type: ignore[return-value]


def _vault(rec: dict[str, Any], cells: bool) -> dict[str, Any] | tuple[Any, ...] | str:
    """One pass over the entry: each field is read once, type-checked where it is read (a present
    field of the wrong type dead-letters the record even when a fallback wins), then the
    event, or its cells, is written. The checks before the timestamp decide between codes;
    every later check can only say `wrong_type`, so their order is free and they are grouped
    into one test."""
    etype = rec.get("type")
    if etype != "response" and etype != "request":
        if etype is None or etype == "":
            raise DeadLetter("missing_field")
        if type(etype) is not str:
            raise DeadLetter("wrong_type")
        if etype == "kmip-request" or etype == "kmip-response":
            return "vault_kmip_entry"
        raise DeadLetter("unsupported_shape")
    req = rec.get("request")
    if type(req) is not dict:
        raise DeadLetter("missing_field" if req is None else "wrong_type")
    g = req.get
    path = g("path")
    if etype == "request" and not (
        type(path) is str and path.startswith("sys/audit") and is_audit_path(path)
    ):
        return REQUEST_ENTRY

    ts = timestamp(rec.get("time"))
    rid = g("id")
    if type(rid) is not str or rid == "":
        _missing_or_wrong(rid)
    op = g("operation")
    if type(op) is not str or op == "":
        _missing_or_wrong(op)
    if type(path) is not str or path == "":
        _missing_or_wrong(path)

    req_mount_type = g("mount_type")
    mount_point = g("mount_point")
    remote_address = g("remote_address")
    remote_port = g("remote_port")
    namespace = g("namespace")
    headers = g("headers")
    r = rec.get
    error = r("error")
    auth = r("auth")
    response = r("response")
    typo_response = r(" response")  # a documented Vault typo key
    if (
        (req_mount_type is not None and type(req_mount_type) is not str)
        or (mount_point is not None and type(mount_point) is not str)
        or (remote_address is not None and type(remote_address) is not str)
        or (error is not None and type(error) is not str)
        or (remote_port is not None and (type(remote_port) is not int  # (bool is not int)
                                         or not LONG_MIN <= remote_port <= LONG_MAX))
        or (namespace is not None and type(namespace) is not dict)
        or (headers is not None and type(headers) is not dict)
        or (auth is not None and type(auth) is not dict)
        or (response is not None and type(response) is not dict)
        or (typo_response is not None and type(typo_response) is not dict)
    ):
        raise DeadLetter("wrong_type")
    if response is None:
        response = typo_response
    # The list fields: sorted lists for the event, their stored text for the cells.
    listed: Any = sorted_strs_cell if cells else sorted_strs

    resp_mount_type = None
    created_ttl = created_policies = None
    if response is not None:
        resp_mount_type = response.get("mount_type")
        rauth = response.get("auth")
        if (resp_mount_type is not None and type(resp_mount_type) is not str) or (
            rauth is not None and type(rauth) is not dict
        ):
            raise DeadLetter("wrong_type")
        if rauth is not None:
            created_ttl = rauth.get("token_ttl")
            if created_ttl is not None and (type(created_ttl) is not int
                                            or not LONG_MIN <= created_ttl <= LONG_MAX):
                raise DeadLetter("wrong_type")
            created_policies = listed(rauth.get("policies"))
    mount_type = req_mount_type or resp_mount_type or None
    if not mount_point:
        mount_point = None

    key = (path, op, mount_type, mount_point, etype)
    routed = _routes.get(key)
    if routed is None:
        routed = _routed(path, op, mount_type, mount_point, etype)
        if len(_routes) > 8192:
            _routes.clear()
        _routes[key] = routed
    category, secret_op, secret_path, kv2, vault_head, secret = routed
    outcome = "failure" if error else ("success" if etype == "response" else "unknown")

    ns = None
    if namespace == _ROOT_NAMESPACE:  # what Vault without namespaces (not Enterprise) logs
        ns = "root"
    elif namespace is not None:
        ns_path = namespace.get("path")
        ns_id = namespace.get("id")
        if (ns_path is not None and type(ns_path) is not str) or (
            ns_id is not None and type(ns_id) is not str
        ):
            raise DeadLetter("wrong_type")
        ns = ns_path or ns_id or None

    if cells:  # the auth block's cells (a token's repeat on each of its requests)
        user_cells, token_cells = _NO_AUTH_CELLS if auth is None else _auth_cells(auth)
    elif auth is not None:
        user_t, roles, credential_t, tail_t, meta, identity_policies, token_policies = (
            _auth_parts(auth))

    ip = port = None
    if remote_address or remote_port is not None:
        if remote_address:
            ip, port = split_address(remote_address)
        if remote_port is not None:
            port = remote_port
    ua = _user_agent(headers) if headers is not None else None

    if cells:  # what the event holds, field by field, in CELLS order, as stored (`cells`)
        return CELLS, (
            ts, "vault.audit", op, outcome, rid, category,
            NULL if secret_op is None else secret_op, NULL if secret_path is None else secret_path,
            *user_cells, NULL if ip is None else ip, NULL if port is None else port, ua or NULL,
            etype, path, mount_type or NULL, mount_point or NULL, 2 if kv2 else NULL, ns or NULL,
            *token_cells, error or NULL,
            NULL if created_ttl is None else created_ttl, created_policies or NULL,
        )

    event: dict[str, Any] = {
        "@timestamp": ts,
        "event": {"dataset": "vault.audit", "action": op, "outcome": outcome, "id": rid},
        "secretsight": {"category": category},
    }
    vault = vault_head.copy()  # entry_type, path, mount_type, mount_point, kv_version
    if secret is not None:
        event["secret"] = secret.copy()
    if ns:
        vault["namespace"] = ns
    if auth is not None:
        # The token's parts (`_auth_parts`), copied: each event owns its dicts and lists.
        if user_t is not None:
            user = user_t.copy()
            if roles is not None:
                user["roles"] = [*roles]  # the last key of `user`
            event["user"] = user
        if credential_t is not None:
            event["credential"] = credential_t.copy()
        if tail_t is not None:  # in order; the nested values replaced by copies in place
            vault.update(tail_t)
            if meta is not None:
                vault_auth = tail_t["auth"].copy()
                vault_auth["metadata"] = meta.copy()
                vault["auth"] = vault_auth
            if identity_policies is not None:
                vault["identity_policies"] = [*identity_policies]
            if token_policies is not None:
                vault["token_policies"] = [*token_policies]
    if ip is not None:
        event["source"] = {"ip": ip, "port": port} if port is not None else {"ip": ip}
    elif port is not None:
        event["source"] = {"port": port}
    if ua:
        event["user_agent"] = {"original": ua}
    if error:
        vault["error"] = error
    if created_ttl is not None or created_policies:
        created: dict[str, Any] = {}
        if created_ttl is not None:
            created["ttl"] = created_ttl
        if created_policies:
            created["policies"] = created_policies
        vault["created_token"] = created
    event["vault"] = vault
    return event


_AuthFields = tuple[Any, Any, Any, Any, Any, Any, Any, Any, Any, "dict[str, str] | None"]


def _auth(auth: dict[str, Any], listed: Any) -> _AuthFields:
    """An entry's `auth` object, checked -> (principal, display_name, accessor, policies,
    token_type, token_ttl, token_policies, entity_id, identity_policies, the kept metadata);
    `listed` makes the list fields (`sorted_strs`, or `sorted_strs_cell` for cells)."""
    a = auth.get
    accessor = a("accessor")
    display_name = a("display_name")
    token_type = a("token_type")
    entity_id = a("entity_id")
    token_ttl = a("token_ttl")
    metadata = a("metadata")
    if (
        (accessor is not None and type(accessor) is not str)
        or (display_name is not None and type(display_name) is not str)
        or (token_type is not None and type(token_type) is not str)
        or (entity_id is not None and type(entity_id) is not str)
        or (token_ttl is not None and (type(token_ttl) is not int
                                       or not LONG_MIN <= token_ttl <= LONG_MAX))
        or (metadata is not None and type(metadata) is not dict)
    ):
        raise DeadLetter("wrong_type")
    raw_policies = a("policies")
    policies = listed(raw_policies)
    token_policies = a("token_policies")
    if token_policies is not None:
        # Usually the same list as `policies` (no identity policies): sorted once then.
        if token_policies == raw_policies:
            token_policies = policies if type(policies) is not list else list(policies)
        else:
            token_policies = listed(token_policies)
    identity_policies = listed(a("identity_policies"))
    kept: dict[str, str] | None = None
    if metadata:
        kept = {}
        for mkey, value in metadata.items():  # a few keys: fewer lookups this way
            if mkey in _METADATA_KEY_SET and value is not None and value != "":
                if type(value) is not str:
                    raise DeadLetter("wrong_type")
                kept[mkey] = value
    # The entity is the principal; tokens without one (root, entity-less, pre-identity
    # Vault) fall back to the accessor (event.yml `user.id`).
    principal = entity_id or accessor
    return (principal, display_name, accessor, policies, token_type, token_ttl, token_policies,
            entity_id, identity_policies, kept)


# What an auth block gives the event: `user` without its roles, the roles, `credential`, the
# run of `vault` keys it sets (in their order), then the nested values of that run: the
# metadata of `vault.auth`, `vault.identity_policies`, `vault.token_policies` (None: absent).
_AuthParts = tuple[Any, Any, Any, Any, Any, Any, Any]
# accessor -> (the auth block as logged, its parts), for the event form: a token logs the same
# block on each of its requests, which then costs one dict compare (in C) instead of a dozen
# reads, checks and conditional stores.
_auth_memo_event: dict[str, tuple[dict[str, Any], _AuthParts]] = {}


def _auth_parts(auth: dict[str, Any]) -> _AuthParts:
    """The event's parts of an auth block (`_AuthParts`; the caller copies them), memoized on
    the whole block. A hit is exact: an equal block holds equal values under every key
    `_auth` reads, of the same JSON types (see `_auth_cells`), except a number, which equals
    a float or a bool too: `token_ttl` is checked again."""
    accessor = auth.get("accessor")
    if accessor.__class__ is str:
        known = _auth_memo_event.get(accessor)
        try:
            if known is not None and known[0] == auth:
                ttl = auth.get("token_ttl")
                if ttl is None or ttl.__class__ is int:
                    return known[1]
        except RecursionError:  # an unread value nested deeper than a compare goes: read again
            pass
    (principal, display_name, accessor, policies, token_type, token_ttl, token_policies,
     entity_id, identity_policies, kept) = _auth(auth, sorted_strs)
    user: dict[str, Any] = {}
    if principal:
        user["id"] = principal
    if display_name:
        user["name"] = display_name
    tail: dict[str, Any] = {}
    meta = None
    if kept:
        role = kept.get("role") or kept.get("role_name")
        tail["auth"] = {"role": role, "metadata": kept} if role else {"metadata": kept}
        meta = kept
    if identity_policies:
        tail["identity_policies"] = identity_policies
    if token_type:
        tail["token_type"] = token_type
    if token_ttl is not None:
        tail["token_ttl"] = token_ttl
    if token_policies:
        tail["token_policies"] = token_policies
    if entity_id:
        tail["entity_id"] = entity_id
    parts = (user if user or policies else None, policies or None,
             {"id": accessor, "type": "vault_token"} if accessor else None, tail or None,
             meta, identity_policies or None, token_policies or None)
    if accessor.__class__ is str:
        if len(_auth_memo_event) > 4096:
            _auth_memo_event.clear()
        _auth_memo_event[accessor] = (auth, parts)
    return parts


# The auth block's cells: (user.id .. user.roles), (vault.token_type .. the auth metadata), the
# two runs of CELLS it fills.
_AuthCells = tuple[tuple[Any, ...], tuple[Any, ...]]
_NO_AUTH_CELLS: _AuthCells = ((NULL,) * 5, (NULL,) * 6 + _NO_METADATA)
# accessor -> (the fields `_auth` reads, as logged; their cells): a token logs the same auth
# block on each of its requests, which then costs a tuple compare instead of its checks.
_auth_memo: dict[str, tuple[tuple[Any, ...], _AuthCells]] = {}


def _auth_cells(auth: dict[str, Any]) -> _AuthCells:
    """`_auth`'s fields as cells, memoized on the fields it reads. A hit is exact: the logged
    values equal checked ones, so they are of the same JSON types (a string equals only a
    string, a list of strings only such a list), except a number, which equals a float or a
    bool too: `token_ttl` is checked again."""
    a = auth.get
    read = (a("accessor"), a("display_name"), a("token_type"), a("entity_id"), a("token_ttl"),
            a("metadata"), a("policies"), a("token_policies"), a("identity_policies"))
    accessor = read[0]
    if accessor.__class__ is str:
        known = _auth_memo.get(accessor)
        try:
            if (known is not None and known[0] == read
                    and (read[4] is None or read[4].__class__ is int)):
                return known[1]
        except RecursionError:  # an unread metadata value nested deeper than a compare goes
            pass
    (principal, display_name, accessor, policies, token_type, token_ttl, token_policies,
     entity_id, identity_policies, kept) = _auth(auth, sorted_strs_cell)
    if kept:
        role = kept.get("role") or kept.get("role_name") or NULL
        meta = tuple(map(kept.get, AUTH_METADATA_KEYS, _NO_METADATA))
    else:
        role, meta = NULL, _NO_METADATA
    made = (
        (principal or NULL, display_name or NULL, accessor or NULL,
         "vault_token" if accessor else NULL, policies or NULL),
        (token_type or NULL, NULL if token_ttl is None else token_ttl, token_policies or NULL,
         entity_id or NULL, identity_policies or NULL, role, *meta),
    )
    if accessor.__class__ is str:
        if len(_auth_memo) > 4096:
            _auth_memo.clear()
        _auth_memo[accessor] = (read, made)
    return made
