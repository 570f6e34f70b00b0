"""Secrets never leave: a canary planted in every place each source can log a secret value must
appear nowhere in `secretsight normalize` output."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsight.cli import cli
from secretsight.normalize import normalize_line
from secretsight.schema import load

CANARY = "CANARY"
# The allow list is the schema's: every `vault.auth.metadata.<key>` field.
ALLOWED_METADATA = sorted(
    n.rsplit(".", 1)[1] for n in load().fields if n.startswith("vault.auth.metadata.")
)
# Every allowed key with a plain value, and secrets planted under keys that are not allowed
# (user-set metadata, a claim mapped to another key, a key differing only in case).
AUTH_METADATA = {
    **{key: f"value-of-{key}" for key in ALLOWED_METADATA},
    "note": "CANARY-auth-metadata",
    "service_account_secret_name": "CANARY-sa-secret-name",
    "token": "hvs.CANARY-metadata-token",
    "Role": "CANARY-case-variant",
}
# Kubernetes `user.extra`: the bound-token keys are read, any other extra never.
USER_EXTRA = {
    "authentication.kubernetes.io/credential-id": ["JTI=5d6e7f80-0000-4000-8000-000000000001"],
    "authentication.kubernetes.io/pod-name": ["app-6d9f7c-x2k4q"],
    "authentication.kubernetes.io/pod-uid": ["0d1e2f30-0000-4000-8000-000000000002"],
    "example.com/oidc-claim": ["CANARY-extra-claim"],
    "scopes.authorization.openshift.io": ["CANARY-extra-scope"],
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def vault_lines() -> list[dict]:
    """log_raw=true entries: raw tokens, request/response data, login passwords, credentials."""
    auth = {
        "client_token": "hvs.CANARY-auth-client-token",
        "accessor": "acc-raw-1",
        "display_name": "approle-backend",
        "policies": ["default"],
        "token_type": "service",
        "metadata": AUTH_METADATA,
    }
    base_req = {
        "client_token": "hvs.CANARY-request-client-token",
        "client_token_accessor": "acc-raw-1",
        "namespace": {"id": "root"},
        "remote_address": "10.0.1.47",
        "headers": {
            "x-vault-token": ["hvs.CANARY-header-token"],
            "authorization": ["Bearer CANARY-bearer"],
        },
    }
    return [
        {  # KV v2 read
            "time": "2026-05-09T10:00:00Z",
            "type": "response",
            "auth": auth,
            "request": {
                **base_req,
                "id": "c-1",
                "operation": "read",
                "mount_type": "kv",
                "path": "secret/data/app/db",
            },
            "response": {
                "mount_type": "kv",
                "data": {"data": {"password": "CANARY-kv-value"}, "metadata": {"version": 1}},
                "wrap_info": {"token": "hvs.CANARY-wrap-token", "accessor": "CANARY-wrap-acc"},
            },
        },
        {  # KV v2 write: the value is in the request
            "time": "2026-05-09T10:00:01Z",
            "type": "response",
            "auth": auth,
            "request": {
                **base_req,
                "id": "c-2",
                "operation": "update",
                "mount_type": "kv",
                "path": "secret/data/app/db",
                "data": {"data": {"password": "CANARY-kv-written"}, "options": {"cas": 1}},
            },
            "response": {"mount_type": "kv", "data": {"version": 2}},
        },
        {  # dynamic database credentials
            "time": "2026-05-09T10:00:02Z",
            "type": "response",
            "auth": auth,
            "request": {
                **base_req,
                "id": "c-3",
                "operation": "read",
                "mount_type": "database",
                "path": "database/creds/readonly",
            },
            "response": {
                "mount_type": "database",
                "secret": {"lease_id": "database/creds/readonly/x"},
                "data": {"username": "v-CANARY-user", "password": "CANARY-db-password"},
            },
        },
        {  # userpass login: password in, token out
            "time": "2026-05-09T10:00:03Z",
            "type": "response",
            "auth": auth,
            "request": {
                **base_req,
                "id": "c-4",
                "operation": "update",
                "path": "auth/userpass/login/alice",
                "data": {"password": "CANARY-login-password"},
            },
            "response": {
                "auth": {
                    "client_token": "hvs.CANARY-login-token",
                    "accessor": "acc-2",
                    "policies": ["dev"],
                    "token_ttl": 60,
                }
            },
        },
        {  # token create under the typo key
            "time": "2026-05-09T10:00:04Z",
            "type": "response",
            "auth": auth,
            "request": {
                **base_req,
                "id": "c-5",
                "operation": "update",
                "mount_type": "token",
                "path": "auth/token/create",
                "data": {"id": "CANARY-requested-token-id"},
            },
            " response": {"auth": {"client_token": "hvs.CANARY-created-token", "policies": ["x"]}},
        },
        {  # audit device enable (request entries here are normalized)
            "time": "2026-05-09T10:00:05Z",
            "type": "request",
            "auth": auth,
            "request": {
                **base_req,
                "id": "c-6",
                "operation": "update",
                "mount_type": "system",
                "path": "sys/audit/file",
                "data": {"options": {"hmac_key": "CANARY-hmac-key", "file_path": "/x"}},
            },
        },
        {  # PKI issue: private key in the response
            "time": "2026-05-09T10:00:06Z",
            "type": "response",
            "auth": auth,
            "request": {
                **base_req,
                "id": "c-7",
                "operation": "update",
                "mount_type": "pki",
                "path": "pki/issue/web",
                "data": {"common_name": "a.example"},
            },
            "response": {
                "mount_type": "pki",
                "data": {"private_key": "CANARY-private-key", "certificate": "x"},
            },
        },
    ]


def cloudtrail_lines() -> list[dict]:
    event = {
        "eventVersion": "1.08",
        "eventTime": "2026-05-09T10:00:00Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "PutSecretValue",
        "awsRegion": "us-east-1",
        "eventID": "ct-c-1",
        "eventType": "AwsApiCall",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::1:user/a",
            "userName": "a",
            "sessionContext": {"attributes": {"note": "CANARY-session-attr"}},
        },
        "requestParameters": {
            "secretId": "prod/db",
            "secretString": "CANARY-secret-string",
            "secretBinary": _b64("CANARY-secret-binary"),
            "clientRequestToken": "t",
        },
        "responseElements": {
            "arn": "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf",
            "secretString": "CANARY-response-secret-string",
        },
        "additionalEventData": {"note": "CANARY-additional"},
    }
    get = {
        **event,
        "eventName": "GetSecretValue",
        "eventID": "ct-c-2",
        "responseElements": {"secretString": "CANARY-get-secret-string"},
    }
    return [
        event,
        {"Records": [get, {**event, "eventID": "ct-c-3", "eventName": "CreateSecret"}]},
        {
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.secretsmanager",
            "detail": {**event, "eventID": "ct-c-4"},
        },
        {
            "Events": [
                {"EventId": "ct-c-5", "CloudTrailEvent": json.dumps({**get, "eventID": "ct-c-5"})}
            ]
        },
    ]


def kubernetes_lines() -> list[dict]:
    last_applied = json.dumps(
        {
            "kind": "Secret",
            "stringData": {"k": "CANARY-last-applied"},
            "data": {"d": _b64("CANARY-last-applied-b64")},
        }
    )
    secret_obj = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": "s",
            "namespace": "prod",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied},
        },
        "data": {"key": _b64("CANARY-data-b64")},
        "stringData": {"plain": "CANARY-string-data"},
        "type": "Opaque",
    }
    ev = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "k-c-1",
        "stage": "ResponseComplete",
        "verb": "create",
        "requestURI": "/api/v1/namespaces/prod/secrets",
        "user": {"username": "u", "extra": USER_EXTRA},
        "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "s", "apiVersion": "v1"},
        "responseStatus": {"code": 201},
        "requestObject": secret_obj,
        "responseObject": secret_obj,
        "requestReceivedTimestamp": "2026-05-09T10:00:00Z",
    }
    patch = {
        **ev,
        "auditID": "k-c-2",
        "verb": "patch",
        "requestObject": {"stringData": {"x": "CANARY-patch"}},
    }
    listed = {
        **ev,
        "auditID": "k-c-3",
        "verb": "list",
        "objectRef": {"resource": "secrets"},
        "requestObject": None,
        "responseObject": {"kind": "SecretList", "items": [secret_obj]},
    }
    configmap = {
        **ev,
        "auditID": "k-c-4",
        "objectRef": {"resource": "configmaps", "namespace": "prod", "name": "c"},
        "requestObject": {
            "kind": "ConfigMap",
            "data": {"aws_secret_access_key": "CANARY-configmap"},
        },
    }
    gke = {
        "protoPayload": {
            "serviceName": "k8s.io",
            "methodName": "io.k8s.core.v1.secrets.create",
            "resourceName": "core/v1/namespaces/prod/secrets/s",
            "request": secret_obj,
            "response": secret_obj,
            "authenticationInfo": {"principalEmail": "u@x"},
        },
        "insertId": "k-c-5",
        "timestamp": "2026-05-09T10:00:00Z",
    }
    return [
        ev,
        patch,
        listed,
        configmap,
        gke,
        {"category": "kube-audit", "properties": {"log": json.dumps({**ev, "auditID": "k-c-6"})}},
        {"category": "kube-audit", "properties": {"log": {**ev, "auditID": "k-c-7"}}},
    ]


SOURCES = {"vault": vault_lines, "cloudtrail": cloudtrail_lines, "kubernetes": kubernetes_lines}
EXPECTED_EVENTS = {"vault": 7, "cloudtrail": 5, "kubernetes": 7}


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("source_arg", ["explicit", "auto"])
def test_no_canary_in_output(tmp_path: Path, source: str, source_arg: str) -> None:
    lines = SOURCES[source]()
    raw = "\n".join(json.dumps(line) for line in lines) + "\n"
    assert raw.count(CANARY) >= len(lines)  # the planted values are really there
    path = tmp_path / f"{source}.ndjson"
    path.write_text(raw)
    arg = source if source_arg == "explicit" else "auto"
    result = CliRunner().invoke(cli, ["normalize", "--source", arg, str(path)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == EXPECTED_EVENTS[source]  # everything normalized: nothing hidden
    assert CANARY not in result.stdout
    assert _b64("CANARY")[:6] not in result.stdout  # base64 of the canary prefix


def test_vault_auth_metadata_keeps_exactly_the_allowed_keys() -> None:
    """Not vacuous: the allowed keys arrive, the others (canaries) do not."""
    (item,) = normalize_line(json.dumps(vault_lines()[0]), "vault")
    metadata = item["event"]["vault"]["auth"]["metadata"]
    assert metadata == {key: f"value-of-{key}" for key in ALLOWED_METADATA}


def test_kubernetes_extra_keeps_only_the_bound_token_keys() -> None:
    (item,) = normalize_line(json.dumps(kubernetes_lines()[0]), "kubernetes")
    event = item["event"]
    assert event["credential"]["id"] == USER_EXTRA["authentication.kubernetes.io/credential-id"][0]
    assert event["kubernetes"]["user"] == {"pod_name": "app-6d9f7c-x2k4q"}
