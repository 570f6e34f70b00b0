"""Secrets never leave: a canary value planted everywhere a secret can appear in a source's log
must appear nowhere in what the Lua filter hands back to Fluent Bit (events, skips, dead
letters: the whole shipped record, not just the schema fields)."""

from __future__ import annotations

import base64
import json

import pytest
from support.lua_filters import LuaFilter, normalize

from secretsight.schema import load

CANARY = "CANARY-9c1d7e-s3cr3t"
CANARY_B64 = base64.b64encode(CANARY.encode()).decode()
LAST_APPLIED = json.dumps(
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "data": {"password": CANARY_B64},
        "stringData": {"token": CANARY},
    }
)


# The schema's allow list (`vault.auth.metadata.<key>`), each with a plain value, and secrets
# planted under keys that are not on it (user-set metadata, another claim, a case variant).
ALLOWED_METADATA = sorted(
    n.rsplit(".", 1)[1] for n in load().fields if n.startswith("vault.auth.metadata.")
)
AUTH_METADATA = {
    **{key: f"value-of-{key}" for key in ALLOWED_METADATA},
    "note": CANARY,
    "service_account_secret_name": f"sa-{CANARY}",
    "Role": f"case-{CANARY}",
}
# Kubernetes `user.extra`: only the bound-token keys are read.
USER_EXTRA = {
    "authentication.kubernetes.io/credential-id": ["JTI=5d6e7f80-0000-4000-8000-000000000001"],
    "authentication.kubernetes.io/pod-name": ["app-6d9f7c-x2k4q"],
    "example.com/oidc-claim": [CANARY],
}


def _vault_auth() -> dict:
    return {
        "client_token": f"hvs.{CANARY}",
        "accessor": "rawAccessor01",
        "display_name": "userpass-alice",
        "metadata": AUTH_METADATA,
        "policies": ["default"],
        "token_type": "service",
        "token_ttl": 3600,
    }


def _vault(
    entry_type: str, path: str, op: str, request_data: dict | None, response: dict | None
) -> bytes:
    request = {
        "id": "0b3c8f6e-0000-4000-8000-000000000001",
        "operation": op,
        "mount_type": "kv",
        "client_token": f"hvs.{CANARY}",
        "namespace": {"id": "root"},
        "path": path,
        "remote_address": "10.0.0.5",
        "headers": {"x-vault-token": [f"hvs.{CANARY}"]},
    }
    if request_data is not None:
        request["data"] = request_data
    entry = {
        "time": "2026-05-09T13:00:00Z",
        "type": entry_type,
        "auth": _vault_auth(),
        "request": request,
    }
    if response is not None:
        entry["response"] = response
    return json.dumps(entry).encode()


def _k8s_secret(verb: str, stage: str = "ResponseComplete", **extra) -> dict:
    secret = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": "db",
            "namespace": "prod",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED},
        },
        "data": {"password": CANARY_B64},
        "stringData": {"token": CANARY},
        "type": "Opaque",
    }
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "5c4b2a10-0000-4000-8000-000000000001",
        "stage": stage,
        "requestURI": "/api/v1/namespaces/prod/secrets/db",
        "verb": verb,
        "user": {"username": "alice", "groups": ["system:authenticated"], "extra": USER_EXTRA},
        "sourceIPs": ["10.0.0.9"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestObject": secret,
        "responseObject": secret,
        "requestReceivedTimestamp": "2026-05-09T13:00:00.000001Z",
        "stageTimestamp": "2026-05-09T13:00:00.010000Z",
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    event.update(extra)
    return event


def _k8s_list() -> dict:
    secret = _k8s_secret("get")["responseObject"]
    return _k8s_secret(
        "list",
        requestObject=None,
        objectRef={"resource": "secrets", "namespace": "prod"},
        responseObject={"kind": "SecretList", "items": [secret, secret]},
    )


CASES = {
    "vault/log_raw_kv2_write": (
        "vault",
        _vault(
            "response",
            "secret/data/app/db",
            "update",
            {"data": {"password": CANARY, "api_key": CANARY}, "options": {}},
            {"mount_type": "kv", "data": {"version": 3}},
        ),
    ),
    "vault/log_raw_kv2_read": (
        "vault",
        _vault(
            "response",
            "secret/data/app/db",
            "read",
            None,
            {
                "mount_type": "kv",
                "data": {"data": {"password": CANARY}, "metadata": {"version": 3}},
                "wrap_info": {"token": f"hvs.{CANARY}"},
            },
        ),
    ),
    "vault/log_raw_login": (
        "vault",
        _vault(
            "response",
            "auth/userpass/login/alice",
            "update",
            {"password": CANARY},
            {
                "auth": {
                    "client_token": f"hvs.{CANARY}",
                    "accessor": "rawAccessor02",
                    "policies": ["default"],
                    "token_ttl": 28800,
                }
            },
        ),
    ),
    "vault/log_raw_database_creds": (
        "vault",
        _vault(
            "response",
            "database/creds/readonly",
            "read",
            None,
            {
                "data": {"username": f"v-{CANARY}", "password": CANARY},
                "secret": {"lease_id": CANARY},
            },
        ),
    ),
    "vault/log_raw_sys_audit_request": (
        "vault",
        _vault("request", "sys/audit/file", "update", {"options": {"hmac_key": CANARY}}, None),
    ),
    "kubernetes/secret_create": ("kubernetes", json.dumps(_k8s_secret("create")).encode()),
    "kubernetes/secret_update": ("kubernetes", json.dumps(_k8s_secret("update")).encode()),
    "kubernetes/secret_get": ("kubernetes", json.dumps(_k8s_secret("get")).encode()),
    "kubernetes/secret_list": ("kubernetes", json.dumps(_k8s_list()).encode()),
    "kubernetes/aks_wrapped_string": (
        "kubernetes",
        json.dumps(
            {"category": "kube-audit", "properties": {"log": json.dumps(_k8s_secret("patch"))}}
        ).encode(),
    ),
    "cloudtrail/create_secret": (
        "cloudtrail",
        json.dumps(
            {
                "Records": [
                    {
                        "eventVersion": "1.08",
                        "eventTime": "2026-05-09T13:00:00Z",
                        "eventSource": "secretsmanager.amazonaws.com",
                        "eventName": "CreateSecret",
                        "awsRegion": "eu-west-1",
                        "sourceIPAddress": "10.0.0.7",
                        "userAgent": "aws-cli/2",
                        "userIdentity": {
                            "type": "IAMUser",
                            "arn": "arn:aws:iam::123456789012:user/alice",
                            "accountId": "123456789012",
                            "userName": "alice",
                        },
                        "requestParameters": {
                            "name": "prod/db",
                            "secretString": CANARY,
                            "secretBinary": CANARY_B64,
                        },
                        "responseElements": {
                            "arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
                        },
                        "eventID": "7d1e0f2a-0000-4000-8000-000000000001",
                        "eventType": "AwsApiCall",
                        "recipientAccountId": "123456789012",
                    }
                ]
            }
        ).encode(),
    ),
}
# Bad input: a dead letter must not carry the line either.
CASES["vault/dead_letter_wrong_type"] = (
    "vault",
    _vault(
        "response", "secret/data/app/db", "read", None, {"data": {"data": {"password": CANARY}}}
    ).replace(b'"token_ttl": 3600', b'"token_ttl": "3600"'),
)
CASES["vault/dead_letter_truncated"] = ("vault", CASES["vault/log_raw_kv2_read"][1][:-40])


@pytest.mark.parametrize(("source", "raw"), CASES.values(), ids=CASES.keys())
def test_canary_never_leaves(source: str, raw: bytes, request: pytest.FixtureRequest) -> None:
    assert CANARY.encode() in raw  # the case really plants it
    result = LuaFilter(source).call(raw, extra={"file": "/var/log/audit.log", "offset": 1234})
    shipped = json.dumps(result.records)
    assert result.records, "nothing was produced: the check below would be vacuous"
    assert CANARY not in shipped
    assert CANARY_B64 not in shipped
    # Not vacuous: the normal cases produce events (with the fields around the secret), the
    # bad-input ones dead letters.
    kind = "dead_letter" if "/dead_letter_" in request.node.callspec.id else "event"
    assert all(kind in r for r in result.records), result.records


def test_vault_metadata_allow_list_is_the_schemas() -> None:
    """Not vacuous: every allowed key arrives (the Lua list is the schema's)."""
    (item,) = normalize(LuaFilter("vault"), CASES["vault/log_raw_kv2_read"][1])
    assert item["event"]["vault"]["auth"]["metadata"] == {
        key: f"value-of-{key}" for key in ALLOWED_METADATA
    }


def test_kubernetes_extra_yields_only_the_bound_token_fields() -> None:
    (item,) = normalize(LuaFilter("kubernetes"), CASES["kubernetes/secret_get"][1])
    assert item["event"]["credential"]["id"] == "JTI=5d6e7f80-0000-4000-8000-000000000001"
    assert item["event"]["kubernetes"]["user"] == {"pod_name": "app-6d9f7c-x2k4q"}
