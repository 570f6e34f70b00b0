"""Secret values never leave: a canary planted wherever a secret can appear is in no output."""

from __future__ import annotations

import base64
import json

import pytest

from secretsight.schema import load, validate

CANARY = "CANARY-7f3e9c"
B64 = base64.b64encode(f"{CANARY}-b64".encode()).decode()


def _c(where: str) -> str:
    return f"{CANARY}-{where}"


# The schema's allow list (`vault.auth.metadata.<key>`), each with a plain value, and secrets
# planted under keys that are not on it (user-set metadata, another claim, a case variant).
ALLOWED_METADATA = sorted(
    n.rsplit(".", 1)[1] for n in load().fields if n.startswith("vault.auth.metadata.")
)
AUTH_METADATA = {
    **{key: f"value-of-{key}" for key in ALLOWED_METADATA},
    "note": _c("auth-metadata"),
    "service_account_secret_name": _c("sa-secret-name"),
    "Role": _c("case-variant"),
}
# Kubernetes `user.extra`: only the bound-token keys are read.
USER_EXTRA = {
    "authentication.kubernetes.io/credential-id": ["JTI=5d6e7f80-0000-4000-8000-000000000001"],
    "authentication.kubernetes.io/pod-name": ["app-6d9f7c-x2k4q"],
    "example.com/oidc-claim": [_c("extra-claim")],
}

VAULT_AUTH = {
    "client_token": _c("auth-client-token"),
    "accessor": "hmac-sha256:aa01",
    "display_name": "approle-backend",
    "policies": ["default"],
    "token_policies": ["default"],
    "metadata": AUTH_METADATA,
    "token_type": "service",
    "token_ttl": 3600,
}


def _vault(path, operation, entry_type="response", request_data=None, response=None, **extra):
    request = {
        "id": "a1b2c3d4-0000-4000-8000-0000000000c1",
        "operation": operation,
        "client_token": _c("request-client-token"),
        "namespace": {"id": "root"},
        "path": path,
        "remote_address": "10.0.1.47",
        "headers": {"x-vault-token": [_c("header-token")], "user-agent": ["vault-cli"]},
    }
    if request_data is not None:
        request["data"] = request_data
    entry = {
        "time": "2026-05-09T13:00:00.5Z",
        "type": entry_type,
        "auth": VAULT_AUTH,
        "request": request,
    }
    if response is not None:
        entry["response"] = response
    entry.update(extra)
    return entry


VAULT_LINES = {
    "kv2_read_response_data": _vault(
        "secret/data/app/db",
        "read",
        response={
            "mount_type": "kv",
            "data": {"data": {"password": _c("kv-value")}, "metadata": {"version": 4}},
            "wrap_info": {"token": _c("wrap-token"), "accessor": "x"},
        },
    ),
    "kv2_write_request_data": _vault(
        "secret/data/app/db",
        "update",
        request_data={"data": {"password": _c("kv-write-value")}, "options": {}},
        response={"mount_type": "kv"},
    ),
    "userpass_login_password": _vault(
        "auth/userpass/login/alice",
        "update",
        request_data={"password": _c("login-password")},
        response={
            "auth": {
                "client_token": _c("issued-token"),
                "accessor": "hmac-sha256:bb",
                "policies": ["default"],
                "token_ttl": 28800,
            }
        },
    ),
    "token_create_typo_response_key": _vault(
        "auth/token/create",
        "update",
        request_data={"id": _c("requested-token-id")},
        **{" response": {"auth": {"client_token": _c("typo-key-token"), "policies": ["default"]}}},
    ),
    "database_creds": _vault(
        "database/creds/readonly",
        "read",
        response={"data": {"username": _c("db-user"), "password": _c("db-password")}},
    ),
    "sys_audit_request_entry_options": _vault(
        "sys/audit/file",
        "update",
        entry_type="request",
        request_data={"options": {"hmac_key": _c("audit-hmac-key")}, "type": "file"},
    ),
    "denied_with_error": _vault(
        "secret/data/app/db",
        "update",
        request_data={"data": {"password": _c("denied-write-value")}},
        response={"data": {"error": "permission denied"}},
        error="permission denied",
    ),
}

SECRET_OBJECT = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {
        "name": "stripe",
        "namespace": "production",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                {"kind": "Secret", "stringData": {"webhook": _c("last-applied")}}
            )
        },
    },
    "data": {"api-key": B64},
    "stringData": {"webhook": _c("string-data")},
    "type": "Opaque",
}


def _k8s(verb, resource="secrets", name="stripe", request_object=None, response_object=None):
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "6b1f0c2e-0000-4000-8000-0000000000c1",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/production/{resource}/{name}",
        "verb": verb,
        "user": {
            "username": "alice@example.com",
            "groups": ["system:authenticated"],
            "extra": USER_EXTRA,
        },
        "sourceIPs": ["203.0.113.42"],
        "objectRef": {
            "resource": resource,
            "namespace": "production",
            "name": name,
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-05-09T10:00:12Z",
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    if request_object is not None:
        event["requestObject"] = request_object
    if response_object is not None:
        event["responseObject"] = response_object
    return event


DEPLOYMENT = {
    "kind": "Deployment",
    "metadata": {
        "annotations": {
            "secretsight.io/secret-paths": "secret/production/stripe",
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                {"env": _c("deploy-last-applied")}
            ),
        }
    },
    "spec": {
        "template": {
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-05-09T14:25:00Z"}
            },
            "spec": {
                "containers": [{"name": "app", "env": [{"name": "KEY", "value": _c("env-value")}]}]
            },
        }
    },
}

K8S_LINES = {
    "secret_create": _k8s("create", request_object=SECRET_OBJECT, response_object=SECRET_OBJECT),
    "secret_update": _k8s("update", request_object=SECRET_OBJECT, response_object=SECRET_OBJECT),
    "secret_patch": _k8s(
        "patch",
        request_object={"stringData": {"k": _c("patch-string-data")}},
        response_object=SECRET_OBJECT,
    ),
    "secret_get": _k8s("get", response_object=SECRET_OBJECT),
    "secret_list": _k8s(
        "list", name="", response_object={"kind": "SecretList", "items": [SECRET_OBJECT]}
    ),
    "deployment_patch": _k8s(
        "patch",
        resource="deployments",
        name="app",
        request_object=DEPLOYMENT,
        response_object=DEPLOYMENT,
    ),
    "aks_string_wrapped_secret_create": {
        "category": "kube-audit",
        "properties": {"log": json.dumps(_k8s("create", request_object=SECRET_OBJECT))},
    },
}


def _cloudtrail(name, params, response=None):
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/alice",
            "userName": "alice",
        },
        "eventTime": "2026-05-09T10:04:00Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.3.3",
        "requestParameters": params,
        "responseElements": response,
        "eventID": "e0000001-0000-4000-8000-0000000000c1",
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }


CLOUDTRAIL_LINES = {
    "create_secret_string": _cloudtrail(
        "CreateSecret", {"name": "prod/db", "secretString": _c("create-string")}
    ),
    "create_secret_binary": _cloudtrail("CreateSecret", {"name": "prod/db", "secretBinary": B64}),
    "put_secret_value": _cloudtrail(
        "PutSecretValue", {"secretId": "prod/db", "secretString": _c("put-string")}
    ),
    "update_secret": _cloudtrail(
        "UpdateSecret", {"secretId": "prod/db", "secretString": _c("update-string")}
    ),
    "get_secret_value_response": _cloudtrail(
        "GetSecretValue",
        {"secretId": "prod/db"},
        {"secretString": _c("response-string"), "name": "prod/db"},
    ),
    "records_file": {
        "Records": [
            _cloudtrail(
                "PutSecretValue", {"secretId": "prod/db", "secretString": _c("records-string")}
            )
        ]
    },
    "lookup_events": {
        "Events": [
            {
                "EventId": "x",
                "CloudTrailEvent": json.dumps(
                    _cloudtrail("CreateSecret", {"name": "a", "secretString": _c("lookup-string")})
                ),
            }
        ]
    },
}

CASES = [
    *(("vault", k, v) for k, v in VAULT_LINES.items()),
    *(("kubernetes", k, v) for k, v in K8S_LINES.items()),
    *(("cloudtrail", k, v) for k, v in CLOUDTRAIL_LINES.items()),
]


@pytest.mark.parametrize(("source", "name", "entry"), CASES, ids=[f"{s}/{n}" for s, n, _ in CASES])
def test_canary_appears_nowhere_in_the_output(programs, source, name, entry):
    line = json.dumps(entry)
    assert CANARY in line or B64 in line  # the canary was planted
    items = programs.items(source, line)
    events = [i["event"] for i in items if "event" in i]
    assert events and len(events) == len(items), f"expected normalized events, got {items}"
    out = json.dumps(items)
    assert CANARY not in out and B64 not in out
    assert [validate(e) for e in events] == [[] for _ in events]


def test_vault_metadata_allow_list_is_the_schemas(programs):
    """Not vacuous: every allowed key arrives, with the same list as the schema's."""
    (item,) = programs.items("vault", json.dumps(VAULT_LINES["kv2_read_response_data"]))
    assert item["event"]["vault"]["auth"]["metadata"] == {
        key: f"value-of-{key}" for key in ALLOWED_METADATA
    }


def test_kubernetes_extra_yields_only_the_bound_token_fields(programs):
    (item,) = programs.items("kubernetes", json.dumps(_k8s("get")))
    assert item["event"]["credential"]["id"] == "JTI=5d6e7f80-0000-4000-8000-000000000001"
    assert item["event"]["kubernetes"]["user"] == {"pod_name": "app-6d9f7c-x2k4q"}
