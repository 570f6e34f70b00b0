"""AWS CloudTrail events (and their envelopes) -> normalized events
(docs/normalization.md#cloudtrail)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from secretsight.normalize.codes import DeadLetter
from secretsight.normalize.fields import (
    ip_literal,
    opt_bool,
    opt_list,
    opt_obj,
    opt_str,
    opt_str_list,
    req_str,
    sorted_set,
    timestamp,
)

SECRETS_MANAGER = "secretsmanager.amazonaws.com"

# eventName -> secret.operation (event.yml `operation_map`); unknown names are `other`.
SM_OPERATIONS = {
    "GetSecretValue": "read",
    "BatchGetSecretValue": "read",
    "ListSecrets": "list",
    "ListSecretVersionIds": "list",
    "DescribeSecret": "describe",
    "GetResourcePolicy": "describe",
    "CreateSecret": "write",
    "PutSecretValue": "write",
    "UpdateSecret": "write",
    "UpdateSecretVersionStage": "write",
    "RestoreSecret": "write",
    "DeleteSecret": "delete",
    "RotateSecret": "rotate",
    "CancelRotateSecret": "rotate",
    "RotationStarted": "rotate",
    "RotationSucceeded": "rotate",
    "RotationFailed": "rotate",
    "RotationAbandoned": "rotate",
}
SM_POLICY_EVENTS = frozenset({"PutResourcePolicy", "DeleteResourcePolicy"})

# The random suffix Secrets Manager appends to a secret's name in its full ARN.
_ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}\Z")


def _arn_name(value: str) -> str | None:
    """The `secret:` part of a Secrets Manager ARN, else None."""
    if not value.startswith("arn:"):
        return None
    parts = value.split(":", 6)
    if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret" or not parts[6]:
        return None
    return parts[6]


def secret_name(value: str) -> str:
    """A secretId (name, full ARN or partial ARN) -> the secret's name."""
    name = _arn_name(value)
    if name is None:
        return value
    if _ARN_SUFFIX.search(name) and len(name) > 7:
        return name[:-7]
    return name


def _is_full_arn(value: str | None) -> bool:
    if not value:
        return False
    name = _arn_name(value)
    return name is not None and len(name) > 7 and _ARN_SUFFIX.search(name) is not None


# A `*` grant scoped by one of these condition keys is not public: it is limited to the
# owner's organization, accounts, network or resources (issue 14; event.yml).
SCOPING_KEYS = frozenset(
    {
        "aws:principalorgid",
        "aws:principalaccount",
        "aws:sourceaccount",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourcearn",
    }
)
# Operators that admit only the listed values. Negated ones (`StringNotEquals`) admit everyone
# else, `...IfExists` and `ForAllValues:` also admit a principal without the key: no scoping.
SCOPING_OPERATORS = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"}
)
SESSION_TYPES = frozenset({"AssumedRole", "FederatedUser"})


def _scoping_value(value: Any) -> bool:
    if type(value) is str:
        return value != "" and value != "*"
    if type(value) is list and value:
        return all(type(v) is str and v != "" and v != "*" for v in value)
    return False


def _is_scoped(condition: Any) -> bool:
    """True when a statement's Condition limits it by a SCOPING_KEYS key."""
    if type(condition) is not dict:
        return False
    for operator, block in condition.items():
        if operator.startswith("ForAnyValue:"):
            operator = operator[len("ForAnyValue:") :]
        if operator not in SCOPING_OPERATORS or type(block) is not dict:
            continue
        for key, value in block.items():
            if key.lower() in SCOPING_KEYS and _scoping_value(value):
                return True
    return False


def _principal_is_star(principal: Any) -> bool:
    if principal == "*":
        return True
    if type(principal) is dict:
        aws = principal.get("AWS")
        return aws == "*" or (type(aws) is list and "*" in aws)
    return False


def _policy_public(policy: Any, loads: Callable[[str], Any]) -> bool | None:
    """True when an Allow statement names a `*` principal without a scoping condition;
    None when unreadable."""
    if type(policy) is str:
        try:
            policy = loads(policy)
        except (ValueError, UnicodeDecodeError):  # unparsable embedded policy: flag left out
            return None
    if type(policy) is not dict:
        return None
    statements = policy.get("Statement")
    if type(statements) is dict:
        statements = [statements]
    if type(statements) is not list:
        return None
    for st in statements:
        if (
            type(st) is dict
            and st.get("Effect") == "Allow"
            and _principal_is_star(st.get("Principal"))
            and not _is_scoped(st.get("Condition"))
        ):
            return True
    return False


def _session_name(arn: str | None) -> str | None:
    """The session of an `assumed-role/<role>/<session>` ARN or a `federated-user/<name>`."""
    if arn:
        if ":assumed-role/" in arn:
            return arn.rsplit("/", 1)[1] or None
        if ":federated-user/" in arn:
            return arn.split(":federated-user/", 1)[1] or None
    return None


def _role_name(arn: str | None) -> str | None:
    """The role of an `arn:aws:sts::<account>:assumed-role/<role>/<session>` ARN."""
    if arn and ":assumed-role/" in arn:
        parts = arn.split(":assumed-role/", 1)[1].split("/")
        if len(parts) >= 2 and parts[0]:
            return parts[0]
    return None


def _principal(
    itype: str | None,
    arn: str | None,
    principal_id: str | None,
    invoked_by: str | None,
    issuer_arn: str | None,
) -> str | None:
    """user.id (event.yml): the issuer behind a session, the service, else the ARN."""
    if itype in SESSION_TYPES and issuer_arn:
        return issuer_arn
    if itype == "AWSService" and invoked_by:
        return invoked_by
    return arn or principal_id or invoked_by


def _user_name(
    ident: dict[str, Any], itype: str | None, arn: str | None, issuer_name: str | None
) -> str | None:
    """user.name (event.yml): the readable principal, never a session name."""
    name = opt_str(ident, "userName")
    if itype == "Root":
        return "root"
    if itype == "AssumedRole":
        return issuer_name or _role_name(arn) or name
    if itype == "FederatedUser":
        return issuer_name or _session_name(arn) or name
    return name or issuer_name or _role_name(arn)


def _credential(itype: str | None, arn: str | None, access_key: str | None) -> dict[str, str]:
    """credential.* (event.yml): the access key, else the session ARN of a session."""
    if access_key:
        session = access_key.startswith("ASIA") or (
            itype in SESSION_TYPES and not access_key.startswith("AKIA")
        )
        return {"id": access_key, "type": "aws_session" if session else "aws_access_key"}
    if itype in SESSION_TYPES and arn:
        return {"id": arn, "type": "aws_session"}
    return {}


def _secret_filters(params: dict[str, Any]) -> list[str] | None:
    """BatchGetSecretValue `filters` [{key, values: [...]}] -> sorted `key=value` strings."""
    filters = opt_list(params, "filters")
    if filters is None:
        return None
    out: list[str] = []
    for f in filters:
        if type(f) is not dict:
            raise DeadLetter("wrong_type")
        key = opt_str(f, "key")
        values = opt_str_list(f, "values")
        if key and values:
            out.extend(f"{key}={v}" for v in values)
    return sorted_set(out)


def normalize_record(
    ev: dict[str, Any], loads: Callable[[str], Any], envelope_source: str | None = None
) -> dict[str, Any]:
    ts = timestamp(ev.get("eventTime"))
    event_id = req_str(ev, "eventID")
    name = req_str(ev, "eventName")
    event_source = opt_str(ev, "eventSource") or envelope_source
    source_ip = opt_str(ev, "sourceIPAddress")
    user_agent = opt_str(ev, "userAgent")
    error_code = opt_str(ev, "errorCode")
    region = opt_str(ev, "awsRegion")
    recipient = opt_str(ev, "recipientAccountId")
    event_type = opt_str(ev, "eventType")
    vpce = opt_str(ev, "vpcEndpointId")
    ident = opt_obj(ev, "userIdentity")
    params = opt_obj(ev, "requestParameters")
    resp = opt_obj(ev, "responseElements")
    extra = opt_obj(ev, "additionalEventData")
    request_id = opt_str(ev, "requestID")
    tls = opt_obj(ev, "tlsDetails")
    host_header = opt_str(tls, "clientProvidedHostHeader") if tls is not None else None

    aws: dict[str, Any] = {}
    if event_source:
        aws["event_source"] = event_source
    if event_type:
        aws["event_type"] = event_type
    if request_id:
        aws["request_id"] = request_id
    if host_header:
        aws["client_host_header"] = host_header

    user: dict[str, Any] = {}
    credential: dict[str, str] = {}
    invoked_by = None
    account = recipient
    if ident is not None:
        itype = opt_str(ident, "type")
        principal = opt_str(ident, "principalId")
        arn = opt_str(ident, "arn")
        ident_account = opt_str(ident, "accountId")
        access_key = opt_str(ident, "accessKeyId")
        invoked_by = opt_str(ident, "invokedBy")
        issuer_arn = issuer_name = None
        ctx = opt_obj(ident, "sessionContext")
        if ctx is not None:
            issuer = opt_obj(ctx, "sessionIssuer")
            if issuer is not None:
                issuer_arn = opt_str(issuer, "arn")
                issuer_name = opt_str(issuer, "userName")
        uid = _principal(itype, arn, principal, invoked_by, issuer_arn)
        if uid:
            user["id"] = uid
        uname = _user_name(ident, itype, arn, issuer_name)
        if uname:
            user["name"] = uname
        credential = _credential(itype, arn, access_key)
        if itype:
            aws["identity_type"] = itype
        if access_key:
            aws["access_key_id"] = access_key
        session_name = _session_name(arn) if itype in SESSION_TYPES else None
        if session_name:
            aws["session_name"] = session_name
        if issuer_arn:
            aws["session_issuer_arn"] = issuer_arn
        account = account or ident_account

    ip = ip_literal(source_ip) if source_ip else None
    if invoked_by is None and source_ip and ip is None and source_ip.endswith(".amazonaws.com"):
        invoked_by = source_ip
    if invoked_by:
        aws["invoked_by"] = invoked_by
    if error_code:
        aws["error_code"] = error_code
    if region:
        aws["region"] = region
    if account:
        aws["account_id"] = account

    category = "other"
    secret: dict[str, Any] | None = None
    if event_source == SECRETS_MANAGER:
        category = "policy" if name in SM_POLICY_EVENTS else "secret"
        p = params or {}
        r = resp or {}
        x = extra or {}
        secret_id = opt_str(p, "secretId")
        create_name = opt_str(p, "name")
        id_list = opt_str_list(p, "secretIdList")
        extra_id = opt_str(x, "SecretId")
        resp_arn = opt_str(r, "arn")
        resp_legacy_arn = opt_str(r, "aRN")
        secret = {"operation": SM_OPERATIONS.get(name, "other")}
        if name == "ListSecrets":
            secret["path"] = "*"
        elif name == "BatchGetSecretValue":
            ids = sorted_set([secret_name(s) for s in id_list] if id_list else None)
            if ids:
                aws["secret_ids"] = ids
            filters = _secret_filters(p)
            if filters:
                aws["secret_filters"] = filters
        else:
            ident_value = secret_id or create_name or extra_id or resp_arn or resp_legacy_arn
            if ident_value:
                secret["path"] = secret_name(ident_value)
        if name != "BatchGetSecretValue":
            for candidate in (resp_arn, resp_legacy_arn, secret_id, extra_id):
                if _is_full_arn(candidate):
                    aws["secret_arn"] = candidate
                    break
        if name == "PutResourcePolicy":
            policy = p.get("resourcePolicy")
            if policy is not None and type(policy) is not str and type(policy) is not dict:
                raise DeadLetter("wrong_type")
            public = _policy_public(policy, loads) if policy not in (None, "") else None
            if public is not None:
                aws["resource_policy_public"] = public
    elif event_source == "cloudtrail.amazonaws.com":
        category = "audit"
    elif event_source == "eks.amazonaws.com" and name == "UpdateClusterConfig":
        logging = opt_obj(params, "logging") if params is not None else None
        if logging is not None:
            category = "audit"
            disabled = False
            for entry in opt_list(logging, "clusterLogging") or ():
                if type(entry) is not dict:
                    raise DeadLetter("wrong_type")
                if opt_bool(entry, "enabled") is False:
                    disabled = True
            aws["logging_disabled"] = disabled

    if vpce:
        aws["vpc_endpoint_id"] = vpce

    event: dict[str, Any] = {
        "@timestamp": ts,
        "event": {
            "dataset": "aws.cloudtrail",
            "action": name,
            "outcome": "failure" if error_code else "success",
            "id": event_id,
        },
        "secretsight": {"category": category},
    }
    if secret is not None:
        event["secret"] = secret
    if user:
        event["user"] = user
    if credential:
        event["credential"] = credential
    if ip is not None:
        event["source"] = {"ip": ip}
    if user_agent:
        event["user_agent"] = {"original": user_agent}
    if aws:
        event["aws"] = aws
    return event


def _one(
    ev: Any, loads: Callable[[str], Any], envelope_source: str | None = None
) -> dict[str, Any]:
    if type(ev) is not dict:
        return {"dead_letter": "not_an_object"}
    try:
        return {"event": normalize_record(ev, loads, envelope_source)}
    except DeadLetter as dl:
        return {"dead_letter": dl.code}


def _batch(items: Any, one: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """An S3 `Records` or lookup-events `Events` list: one item per element, never dropped."""
    if type(items) is not list:
        return [{"dead_letter": "wrong_type"}]
    if not items:
        return [{"skip": "empty_batch"}]
    return [one(x) for x in items]


def normalize_cloudtrail(obj: dict[str, Any], loads: Callable[[str], Any]) -> list[dict[str, Any]]:
    """One parsed line: a single event, an S3 `Records` file, an EventBridge envelope or
    `lookup-events` output."""
    if "Records" in obj:
        return _batch(obj["Records"], lambda ev: _one(ev, loads))
    if "Events" in obj:
        return _batch(obj["Events"], lambda entry: _lookup_entry(entry, loads))
    if "detail-type" in obj and "detail" in obj:
        detail = obj["detail"]
        if type(detail) is not dict:
            return [{"dead_letter": "wrong_type"}]
        src = obj.get("source")
        envelope_source = None
        if type(src) is str and src.startswith("aws.") and len(src) > 4:
            envelope_source = src[4:] + ".amazonaws.com"
        return [_one(detail, loads, envelope_source)]
    return [_one(obj, loads)]


def _lookup_entry(entry: Any, loads: Callable[[str], Any]) -> dict[str, Any]:
    if type(entry) is not dict:
        return {"dead_letter": "not_an_object"}
    inner = entry.get("CloudTrailEvent")
    if inner is None or inner == "":
        return {"dead_letter": "missing_field"}
    if type(inner) is str:
        try:
            inner = loads(inner)
        except (ValueError, UnicodeDecodeError):
            return {"dead_letter": "malformed_json"}
    elif type(inner) is not dict:
        return {"dead_letter": "wrong_type"}
    return _one(inner, loads)
