"""Reusable pieces of normal activity (the benign baseline and the background of attacks)."""

from __future__ import annotations

from datetime import datetime, timedelta

from secretsight.scenarios.world import AwsPrincipal, K8sUser, Timeline, VaultToken

AGENT = VaultToken("tok_agent_backend", "kubernetes-app-backend", ("default", "app-backend"))
ESO = VaultToken("tok_k8s_eso", "kubernetes-k8s-eso", ("default", "eso-read"))
ESO_SYNC = VaultToken("tok_eso_bulk_sync", "eso-bulk-sync", ("default", "eso-read"))
CI = VaultToken("tok_ci_release", "approle-ci-release", ("default", "ci-deploy"), ttl=600)
ROTATOR = VaultToken("tok_rotator", "approle-db-rotator", ("default", "db-rotate"), ttl=900)

DB_PASSWORD = "secret/production/database/password"
ESO_SECRETS = [
    f"secret/production/{svc}/{key}"
    for svc, key in [
        ("payments", "api-key"), ("payments", "webhook-secret"), ("orders", "db-url"),
        ("orders", "queue-token"), ("search", "admin-key"), ("mail", "smtp-password"),
        ("mail", "dkim-key"), ("auth", "jwt-signing"), ("auth", "oauth-client"),
        ("cdn", "origin-token"), ("metrics", "remote-write"), ("billing", "stripe-key"),
    ]
]
SYNC_SECRETS = [f"secret/platform/tenant-{i:02d}/config" for i in range(80)]

SM_APPS = [
    (AwsPrincipal("orders-api", session="i-0a1b2c3d4e5f60001"), "prod/orders/db", "10.0.2.31"),
    (AwsPrincipal("billing-worker", session="i-0a1b2c3d4e5f60002"), "prod/billing/stripe", "10.0.2.44"),
]
CONTROLLERS = [
    (K8sUser.service_account("kube-system", "metrics-server"), "kube-system", "metrics-server-certs"),
    (K8sUser.service_account("external-secrets", "external-secrets"), "external-secrets",
     "external-secrets-webhook"),
]
SCHEDULER = K8sUser("system:kube-scheduler", ("system:authenticated",))
APP_BACKEND_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "app-backend", "namespace": "production",
                 "annotations": {"secretsight.io/secret-paths": DB_PASSWORD}},
    "spec": {"template": {"metadata": {"labels": {"app": "app-backend"}}}},
}


def every(start: datetime, end: datetime, period: float, jitter: float, tl: Timeline):
    """Times from start to end, `period` seconds apart with +-`jitter` seconds."""
    t = start
    while t < end:
        yield t + timedelta(seconds=tl.rng.uniform(-jitter, jitter) if jitter else 0)
        t += timedelta(seconds=period)


def vault_agent(tl: Timeline, start: datetime, end: datetime, token: VaultToken = AGENT,
                path: str = DB_PASSWORD, period: float = 300, pods: int = 1) -> None:
    """Vault agent re-reading its lease every `period` s from pod IPs in 10.0.1.0/24."""
    ips = [f"10.0.1.{20 + i}" for i in range(pods)]
    for i, t in enumerate(every(start, end, period, 2, tl)):
        tl.vault_read(t, token, path, ips[i % len(ips)])


def vault_heartbeat(tl: Timeline, start: datetime, end: datetime, period: float = 30) -> None:
    """The agent's token lookups: keeps the Vault audit source continuously busy."""
    for t in every(start, end, period, 1, tl):
        tl.vault(t, AGENT, "read", "auth/token/lookup-self", "10.0.1.20", kv2=False,
                 mount_type="token", response_data={"ttl": 3600})


def k8s_heartbeat(tl: Timeline, start: datetime, end: datetime, period: float = 10) -> None:
    """kube-scheduler's leader-election lease renewals (a continuously emitting source)."""
    for t in every(start, end, period, 0.5, tl):
        tl.k8s(t, SCHEDULER, "update", "leases", "10.0.0.10", namespace="kube-system",
               name="kube-scheduler", api_group="coordination.k8s.io",
               user_agent="kube-scheduler/v1.29.2 (linux/amd64) kubernetes/4b8e819/leader-election")


def cloudtrail_heartbeat(tl: Timeline, start: datetime, end: datetime, period: float = 20) -> None:
    """KMS decrypts behind Secrets Manager: a busy CloudTrail stream of non-secret events."""
    svc = AwsPrincipal("secretsmanager", kind="role", session="sm")
    for t in every(start, end, period, 1, tl):
        tl.cloudtrail(t, svc, "Decrypt", "secretsmanager.amazonaws.com",
                      source="kms.amazonaws.com", user_agent="secretsmanager.amazonaws.com",
                      request={"encryptionAlgorithm": "SYMMETRIC_DEFAULT"})


def eso_hourly(tl: Timeline, start: datetime, end: datetime) -> None:
    """External Secrets Operator reading its fixed 12 secrets every 3600 s."""
    for t in every(start, end, 3600, 5, tl):
        for i, path in enumerate(ESO_SECRETS):
            tl.vault_read(t + timedelta(seconds=0.3 * i), ESO, path, "10.0.1.200")


def eso_bulk_sync(tl: Timeline, t: datetime) -> None:
    """The allowlisted full sync: 80 secrets in about 40 s."""
    for i, path in enumerate(SYNC_SECRETS):
        tl.vault_read(t + timedelta(seconds=0.5 * i), ESO_SYNC, path, "10.0.1.201")


def secrets_manager_apps(tl: Timeline, start: datetime, end: datetime, period: float = 300) -> None:
    for who, secret, ip in SM_APPS:
        for t in every(start, end, period, 60, tl):
            tl.cloudtrail(t, who, "GetSecretValue", ip, secret=secret)


def controllers(tl: Timeline, start: datetime, end: datetime, period: float = 600) -> None:
    """Kubernetes controllers reading their own secrets."""
    for user, ns, name in CONTROLLERS:
        for t in every(start, end, period, 30, tl):
            tl.k8s(t, user, "get", "secrets", f"10.0.0.{30 + len(ns) % 7}", namespace=ns,
                   name=name, user_agent=f"{user.username.split(':')[-1]}/v0.7.0")


def deployment_update(tl: Timeline, t: datetime, body: dict, ip: str = "10.0.0.5") -> None:
    """A GitOps apply of a Deployment (Request level: the annotations are logged)."""
    who = K8sUser.service_account("argocd", "argocd-application-controller")
    meta = body["metadata"]
    tl.k8s(t, who, "update", "deployments", ip, namespace=meta["namespace"], name=meta["name"],
           api_group="apps", level="Request", request_object=body,
           user_agent="argocd-application-controller/v2.10.1")


def rollout_restart(tl: Timeline, t: datetime, namespace: str, name: str) -> None:
    """`kubectl rollout restart`: a strategic-merge patch setting restartedAt."""
    who = K8sUser("deploy-bot@example.com", ("platform-deployers", "system:authenticated"))
    body = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": t.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}}
    tl.k8s(t, who, "patch", "deployments", "10.0.0.6", namespace=namespace, name=name,
           api_group="apps", level="Request", request_object=body)
