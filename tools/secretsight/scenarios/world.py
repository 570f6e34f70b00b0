"""Identities and raw-log builders for the scenario generator: each source's NATIVE format, so
generated logs go through the real normalizers.

- Vault: audit device NDJSON, a `request` and a `response` entry per operation sharing
  `request.id`; client tokens and every string in request/response data HMAC'd as the file
  device does by default (accessors left in clear: `hmac_accessor=false`, which keeps scenario
  identities readable); KV v2 paths (`secret/data/...`).
- CloudTrail: events as AWS writes them, delivered both as S3 `{"Records": [...]}` files (one
  JSON document per line, one file per 5 minutes) and as single-event lines (CloudWatch Logs).
- Kubernetes: audit.k8s.io/v1 events, one line per stage (RequestReceived, then
  ResponseComplete; watches add ResponseStarted), sharing `auditID`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
VAULT_HMAC_KEY = b"secretsight-scenario-audit-salt"


def rfc3339(t: datetime, digits: int = 6) -> str:
    t = t.astimezone(UTC)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 0:
        return base + "Z"
    frac = f"{t.microsecond:06d}"[:digits]
    return f"{base}.{frac}Z"


def hmac_value(value: str) -> str:
    digest = hmac.new(VAULT_HMAC_KEY, value.encode(), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest}"


def _hmac_tree(value: Any) -> Any:
    """What the Vault audit device logs for request/response data: every string HMAC'd."""
    if isinstance(value, str):
        return hmac_value(value)
    if isinstance(value, dict):
        return {k: _hmac_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hmac_tree(v) for v in value]
    return value


@dataclass(frozen=True)
class VaultToken:
    """One Vault token (its accessor) of one entity. `entity`: the entity's name, from which
    its id is derived (the accessor when empty: one entity per token); None for a token
    without an entity (root tokens), whose events carry no `entity_id`."""

    accessor: str
    display_name: str
    policies: tuple[str, ...] = ("default",)
    ttl: int = 3600
    token_type: str = "service"
    entity: str | None = ""

    @property
    def entity_id(self) -> str | None:
        if self.entity is None:
            return None
        name = self.entity or self.accessor
        return str(uuid.UUID(bytes=hashlib.md5(name.encode()).digest()))

    def renewed(self, accessor: str) -> VaultToken:
        """The token a re-authentication issues (Vault Agent, Kubernetes auth, AppRole): a new
        accessor; the same entity, display name, policies and role."""
        return replace(self, accessor=accessor, entity=self.entity or self.accessor)

    def auth(self) -> dict[str, Any]:
        policies = sorted(set(self.policies))
        auth: dict[str, Any] = {
            "client_token": hmac_value("hvs." + self.accessor),
            "accessor": self.accessor,
            "display_name": self.display_name,
            "policies": policies,
            "token_policies": policies,
            "metadata": {"role": self.display_name},
            "token_type": self.token_type,
            "token_ttl": self.ttl,
        }
        if self.entity_id is not None:
            auth["entity_id"] = self.entity_id
        return auth


@dataclass(frozen=True)
class AwsPrincipal:
    """An IAM user (`user`) or an assumed-role session (`role` + `session`). `access_key`:
    given, else a long-term `AKIA...` key for users and root, and for a session its own
    temporary `ASIA...` key (as STS issues)."""

    name: str
    kind: str = "role"  # role | user | root
    session: str = "session"
    access_key: str = ""

    @property
    def key(self) -> str:
        if self.access_key:
            return self.access_key
        if self.kind == "role":
            digest = hashlib.md5(f"{self.name}/{self.session}".encode()).hexdigest()
            return "ASIA" + digest[:16].upper()
        return "AKIAEXAMPLE"

    def next_session(self, session: str) -> AwsPrincipal:
        """The same role in a new STS session (a new CI run, a new ECS task): new key."""
        return replace(self, session=session, access_key="")

    @property
    def arn(self) -> str:
        if self.kind == "user":
            return f"arn:aws:iam::{ACCOUNT}:user/{self.name}"
        if self.kind == "root":
            return f"arn:aws:iam::{ACCOUNT}:root"
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.name}/{self.session}"

    def identity(self) -> dict[str, Any]:
        if self.kind == "user":
            return {
                "type": "IAMUser", "principalId": "AIDA" + self.name.upper()[:12],
                "arn": self.arn, "accountId": ACCOUNT, "accessKeyId": self.key,
                "userName": self.name,
            }
        if self.kind == "root":
            return {"type": "Root", "principalId": ACCOUNT, "arn": self.arn,
                    "accountId": ACCOUNT, "accessKeyId": self.key}
        role_id = "AROA" + hashlib.md5(self.name.encode()).hexdigest()[:12].upper()
        return {
            "type": "AssumedRole", "principalId": f"{role_id}:{self.session}", "arn": self.arn,
            "accountId": ACCOUNT, "accessKeyId": self.key,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role", "principalId": role_id,
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/{self.name}",
                    "accountId": ACCOUNT, "userName": self.name,
                },
                "attributes": {"creationDate": "2026-03-01T00:00:00Z", "mfaAuthenticated": "false"},
            },
        }


def secret_arn(name: str) -> str:
    suffix = hashlib.md5(name.encode()).hexdigest()[:6]
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-{suffix}"


@dataclass(frozen=True)
class K8sUser:
    """A Kubernetes user. A bound service-account token also names its pod (`pod`: name and
    uid) and its own id (`credential`, the `JTI=...` of Kubernetes 1.29+), logged as
    `user.extra`."""

    username: str
    groups: tuple[str, ...] = ("system:authenticated",)
    pod: tuple[str, str] | None = None
    credential: str | None = None

    @property
    def uid(self) -> str:
        """Stable per user, as the API server logs it (the user's or service account's UID)."""
        return str(uuid.UUID(bytes=hashlib.md5(self.username.encode()).digest()))

    def rotated(self, credential: str, pod: tuple[str, str] | None = None) -> K8sUser:
        """The token the kubelet refreshes (hourly): a new credential id, the same user."""
        return replace(self, credential=credential, pod=pod or self.pod)

    def extra(self) -> dict[str, list[str]] | None:
        extra = {}
        if self.credential:
            extra["authentication.kubernetes.io/credential-id"] = [self.credential]
        if self.pod:
            extra["authentication.kubernetes.io/pod-name"] = [self.pod[0]]
            extra["authentication.kubernetes.io/pod-uid"] = [self.pod[1]]
        return extra or None

    @staticmethod
    def service_account(namespace: str, name: str) -> K8sUser:
        return K8sUser(
            f"system:serviceaccount:{namespace}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        )


@dataclass
class RawLog:
    """Raw records per source, with their time, written out by `Timeline.write`."""

    vault: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)
    cloudtrail: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)
    kubernetes: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)


class Timeline:
    """Collects operations of a scenario; `rng` is the only source of randomness (seeded)."""

    def __init__(self, seed: int, start: datetime):
        self.rng = random.Random(seed)
        self.start = start
        self.raw = RawLog()
        self._seq = 0
        self.cloudtrail_single_every = 7  # every 7th CloudTrail event goes to the CWL file

    # ---- helpers
    def at(self, **delta: float) -> datetime:
        return self.start + timedelta(**delta)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def pod_ip(self, subnet: str = "10.0.1") -> str:
        return f"{subnet}.{self.rng.randint(10, 250)}"

    # ---- Vault
    def vault(
        self,
        t: datetime,
        token: VaultToken,
        operation: str,
        path: str,
        ip: str,
        *,
        kv2: bool = True,
        mount_type: str | None = None,
        error: str | None = None,
        request_data: dict[str, Any] | None = None,
        response_data: dict[str, Any] | None = None,
        response_auth: dict[str, Any] | None = None,
        with_response: bool = True,
        user_agent: str | None = None,
    ) -> None:
        """One Vault operation. `path` is the logical path (`secret/app/db`); with `kv2` the
        raw path gets the KV v2 segment (`secret/data/app/db`, `metadata/` for list)."""
        raw_path = path
        mount_point = path.split("/", 1)[0] + "/"
        if kv2 and "/" in path:
            mount, rest = path.split("/", 1)
            segment = "metadata" if operation == "list" else "data"
            raw_path = f"{mount}/{segment}/{rest}"
        if mount_type is None:
            mount_type = "kv" if kv2 else "system" if path.startswith("sys/") else "token"
        request_id = self.uuid()
        request: dict[str, Any] = {
            "id": request_id,
            "operation": operation,
            "mount_type": mount_type,
            "mount_point": mount_point,
            "client_token": token.auth()["client_token"],
            "client_token_accessor": token.accessor,
            "namespace": {"id": "root"},
            "path": raw_path,
            "remote_address": ip,
            "remote_port": self.rng.randint(30000, 60999),
        }
        if request_data is not None:
            request["data"] = _hmac_tree(request_data)
        if user_agent is not None:
            request["headers"] = {"user-agent": [user_agent]}
        entry: dict[str, Any] = {"time": rfc3339(t), "type": "request", "auth": token.auth(),
                                 "request": request}
        if error:
            entry["error"] = error
        self.raw.vault.append((t, self._next(), entry))
        if not with_response:
            return
        response: dict[str, Any] = {"mount_type": mount_type}
        if response_data is not None and not error:
            response["data"] = _hmac_tree(response_data)
        if response_auth is not None:
            response["auth"] = response_auth
        done = t + timedelta(microseconds=self.rng.randint(300, 4000))
        out: dict[str, Any] = {"time": rfc3339(done), "type": "response", "auth": token.auth(),
                               "request": dict(request), "response": response}
        if error:
            out["error"] = error
        self.raw.vault.append((done, self._next(), out))

    def vault_read(self, t: datetime, token: VaultToken, path: str, ip: str, **kw: Any) -> None:
        self.vault(t, token, "read", path, ip, response_data={"data": {"value": path}}, **kw)

    # ---- CloudTrail
    def cloudtrail(
        self,
        t: datetime,
        who: AwsPrincipal,
        name: str,
        ip: str,
        *,
        secret: str | None = None,
        source: str = "secretsmanager.amazonaws.com",
        user_agent: str = "aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 api/secretsmanager#1.28.2",
        error: str | None = None,
        request: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        read_only: bool | None = None,
        region: str = REGION,
    ) -> None:
        params = dict(request or {})
        if secret is not None:
            params.setdefault("secretId", secret_arn(secret) if self.rng.random() < 0.5 else secret)
        record: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": who.identity(),
            "eventTime": rfc3339(t, 0),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": user_agent,
            "requestParameters": params or None,
            "responseElements": response,
            "requestID": self.uuid(),
            "eventID": self.uuid(),
            "readOnly": read_only if read_only is not None else name.startswith(("Get", "List", "Describe")),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        }
        if secret is not None:
            record["resources"] = [{"accountId": ACCOUNT, "type": "AWS::SecretsManager::Secret",
                                    "ARN": secret_arn(secret)}]
        if error:
            record["errorCode"] = error
            record["errorMessage"] = f"User: {who.arn} is not authorized to perform: {name}"
            record["responseElements"] = None
        self.raw.cloudtrail.append((t, self._next(), record))

    # ---- Kubernetes
    def k8s(
        self,
        t: datetime,
        user: K8sUser,
        verb: str,
        resource: str,
        ip: str,
        *,
        namespace: str | None = None,
        name: str | None = None,
        api_group: str = "",
        user_agent: str = "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
        code: int = 200,
        level: str = "Metadata",
        request_object: dict[str, Any] | None = None,
        impersonate: K8sUser | None = None,
        query: str = "",
        subresource: str | None = None,
    ) -> None:
        prefix = f"/apis/{api_group}/v1" if api_group else "/api/v1"
        uri = prefix
        if namespace:
            uri += f"/namespaces/{namespace}"
        uri += f"/{resource}"
        if name:
            uri += f"/{name}"
        if subresource:
            uri += f"/{subresource}"
        if query:
            uri += f"?{query}"
        elif verb == "watch":
            uri += "?watch=true"
        audit_id = self.uuid()
        ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
        if namespace:
            ref["namespace"] = namespace
        if name:
            ref["name"] = name
        if subresource:
            ref["subresource"] = subresource
        if api_group:
            ref["apiGroup"] = api_group
        base: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": audit_id,
            "requestURI": uri,
            "verb": verb,
            "user": {"username": user.username, "uid": user.uid, "groups": list(user.groups)},
            "sourceIPs": [ip],
            "userAgent": user_agent,
            "objectRef": ref,
            "requestReceivedTimestamp": rfc3339(t),
        }
        extra = user.extra()
        if extra:
            base["user"]["extra"] = extra
        if impersonate is not None:
            base["impersonatedUser"] = {"username": impersonate.username,
                                        "groups": list(impersonate.groups)}
        if request_object is not None and level in ("Request", "RequestResponse"):
            base["requestObject"] = request_object
        received = dict(base, stage="RequestReceived", stageTimestamp=rfc3339(t))
        self.raw.kubernetes.append((t, self._next(), received))
        done = t + timedelta(microseconds=self.rng.randint(800, 9000))
        decision = "forbid" if code == 403 else "allow"
        reason = "" if code == 403 else f'RBAC: allowed by ClusterRoleBinding "{user.username.split(":")[-1]}"'
        stages = ["ResponseStarted", "ResponseComplete"] if verb == "watch" else ["ResponseComplete"]
        for stage in stages:
            entry = dict(base, stage=stage, stageTimestamp=rfc3339(done))
            entry["responseStatus"] = {"metadata": {}, "code": code}
            entry["annotations"] = {"authorization.k8s.io/decision": decision,
                                    "authorization.k8s.io/reason": reason}
            self.raw.kubernetes.append((done, self._next(), entry))

    # ---- output
    def write(self, out: Any) -> list[Any]:
        """Write the raw logs under `out` (a pathlib.Path); returns the files written."""
        out.mkdir(parents=True, exist_ok=True)
        files = []
        if self.raw.vault:
            path = out / "vault-audit.log"
            with path.open("w", encoding="utf-8") as fh:
                for _, _, entry in sorted(self.raw.vault, key=lambda x: (x[0], x[1])):
                    fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
            files.append(path)
        if self.raw.cloudtrail:
            records = sorted(self.raw.cloudtrail, key=lambda x: (x[0], x[1]))
            single = [r for i, r in enumerate(records) if i % self.cloudtrail_single_every == 3]
            batched = [r for i, r in enumerate(records) if i % self.cloudtrail_single_every != 3]
            s3 = out / "cloudtrail-s3.json"
            with s3.open("w", encoding="utf-8") as fh:
                bucket: list[dict[str, Any]] = []
                key = None
                for t, _, record in batched:
                    k = (t.date(), t.hour, t.minute // 5)
                    if key is not None and k != key and bucket:
                        fh.write(json.dumps({"Records": bucket}, separators=(",", ":")) + "\n")
                        bucket = []
                    key = k
                    bucket.append(record)
                if bucket:
                    fh.write(json.dumps({"Records": bucket}, separators=(",", ":")) + "\n")
            files.append(s3)
            if single:
                cwl = out / "cloudtrail-cwl.ndjson"
                with cwl.open("w", encoding="utf-8") as fh:
                    for _, _, record in single:
                        fh.write(json.dumps(record, separators=(",", ":")) + "\n")
                files.append(cwl)
        if self.raw.kubernetes:
            path = out / "kube-audit.log"
            with path.open("w", encoding="utf-8") as fh:
                for _, _, entry in sorted(self.raw.kubernetes, key=lambda x: (x[0], x[1])):
                    fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
            files.append(path)
        return files
