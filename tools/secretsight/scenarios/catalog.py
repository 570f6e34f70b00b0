"""The labelled scenarios: the benign baseline and one attack per anomaly/source, each with a
near miss that must stay silent. Expectations live in `tests/scenarios/<name>.expect.yml`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from secretsight.scenarios import activity as act
from secretsight.scenarios.world import AwsPrincipal, K8sUser, Timeline, VaultToken

MONDAY = datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC)  # a Monday
TUESDAY_10 = MONDAY + timedelta(days=1, hours=10)
SUNDAY = MONDAY + timedelta(days=6)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Callable[[Timeline], None]
    start: datetime
    sources: tuple[str, ...]
    anomalies: tuple[str, ...]  # the classes it exercises (coverage report), () for baseline
    config: dict[str, Any] = field(default_factory=dict)  # Config overrides (YAML shape)
    long: bool = False  # generated at test time only, never committed


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, description: str, *, start: datetime, sources: tuple[str, ...],
             anomalies: tuple[str, ...] = (), config: dict[str, Any] | None = None,
             long: bool = False) -> Callable[[Callable[[Timeline], None]], Callable[[Timeline], None]]:
    def register(build: Callable[[Timeline], None]) -> Callable[[Timeline], None]:
        SCENARIOS[name] = Scenario(name, description, build, start, sources, anomalies,
                                   config or {}, long)
        return build
    return register


def _span(tl: Timeline, **delta: float) -> tuple[datetime, datetime]:
    return tl.start, tl.start + timedelta(**delta)


# ------------------------------------------------------------------------------------------
# The benign baseline

BASELINE_CONFIG = {
    "allowlists": {"bulk_read": ["eso-bulk-sync"], "path_diversity": ["eso-bulk-sync"]},
}


@scenario(
    "baseline",
    "15 days of normal secret access in all three stores: Vault agent re-reading the database "
    "password every 300 s from 10.0.1.0/24 (with a rolling pod replacement), External Secrets "
    "Operator reading 12 secrets hourly plus an allowlisted daily sync of 80, CI reading its "
    "deploy token once per deployment, the quarterly database-password rotation followed by a "
    "rollout restart and a read of the new value, Secrets Manager apps polling one secret each, "
    "Kubernetes controllers reading their own secrets. Must produce zero findings.",
    start=MONDAY, sources=("vault", "cloudtrail", "kubernetes"), config=BASELINE_CONFIG,
    long=True,
)
def baseline(tl: Timeline) -> None:
    start, end = _span(tl, days=15)
    act.deployment_update(tl, start + timedelta(minutes=1), act.APP_BACKEND_DEPLOYMENT)
    act.vault_agent(tl, start, end)
    # Rolling replacement on day 3: old and new pod both re-read for ten minutes.
    roll = start + timedelta(days=3, hours=11)
    for i in range(3):
        tl.vault_read(roll + timedelta(seconds=150 + 300 * i), act.AGENT, act.DB_PASSWORD,
                      "10.0.1.87")
    act.eso_hourly(tl, start, end)
    for day in range(15):
        act.eso_bulk_sync(tl, start + timedelta(days=day, hours=2, minutes=17))
    for day in range(15):  # deployments on weekdays, 1-3 a day, in business hours
        when = start + timedelta(days=day)
        if when.weekday() >= 5:
            continue
        for k in range(1 + day % 3):
            t = when + timedelta(hours=9 + 3 * k, minutes=tl.rng.randint(0, 50))
            tl.vault_read(t, act.CI, "secret/ci/deploy-token", f"10.0.5.{tl.rng.randint(2, 60)}")
    # Quarterly rotation on day 9 (a Wednesday), 10:12: write, restart within minutes, read.
    rot = start + timedelta(days=9, hours=10, minutes=12)
    tl.vault(rot, act.ROTATOR, "update", act.DB_PASSWORD, "10.0.4.9",
             request_data={"data": {"password": "n3w-p4ss"}}, response_data={"version": 7})
    act.rollout_restart(tl, rot + timedelta(minutes=3), "production", "app-backend")
    act.secrets_manager_apps(tl, start, end, period=420)
    act.controllers(tl, start, end, period=900)


# ------------------------------------------------------------------------------------------
# Vault attacks

HARVESTER = VaultToken("tok_A1b2c3", "kubernetes-inventory", ("default", "inventory"))
NEAR_HARVEST = VaultToken("tok_N3arM1ss", "kubernetes-reporting", ("default", "reporting"))
HARVEST_PATHS = [
    f"secret/{env}/{kind}/{leaf}"
    for env in ("production", "staging")
    for kind, leaves in [("database", ["password", "replica", "readonly", "analytics"]),
                        ("api-keys", ["stripe", "sendgrid", "twilio", "github", "slack",
                                      "datadog", "pagerduty"]),
                        ("certificates", ["ca-key", "tls-key", "signing-key"]),
                        ("cloud", ["aws", "gcp", "azure", "cloudflare", "fastly", "akamai",
                                   "digitalocean", "linode", "vultr", "hetzner", "ovh", "scaleway",
                                   "oracle", "ibm"])]
    for leaf in leaves
][:47]


@scenario(
    "vault_harvest",
    "tok_A1b2c3 reads 500 times across 47 paths in 5 minutes (credential harvesting). Near miss: "
    "tok_N3arM1ss reads 49 times across 9 paths in 5 minutes.",
    start=TUESDAY_10, sources=("vault",), anomalies=("bulk_read", "path_diversity"),
)
def vault_harvest(tl: Timeline) -> None:
    start, end = _span(tl, minutes=40)
    act.vault_heartbeat(tl, start, end)
    near = start + timedelta(minutes=2)
    for i in range(49):
        tl.vault_read(near + timedelta(seconds=6 * i), NEAR_HARVEST,
                      f"secret/production/reports/r{i % 9}", "10.0.1.61")
    burst = start + timedelta(minutes=15)
    for i in range(500):
        tl.vault_read(burst + timedelta(seconds=0.598 * i), HARVESTER,
                      HARVEST_PATHS[i % len(HARVEST_PATHS)], "10.0.1.33")


TOKEN_B = VaultToken("tok_B9x2", "kubernetes-checkout", ("default", "checkout"))
ROLLING = VaultToken("tok_R0ll1ng", "kubernetes-cart", ("default", "cart"))


@scenario(
    "vault_dual_source_ip",
    "tok_B9x2 reads from its pod at 10.0.1.47, then an hour later the same path from "
    "185.234.219.12 (exfiltrated token). Near miss: a rolling pod replacement reads from two "
    "internal IPs at once.",
    start=TUESDAY_10 - timedelta(hours=1, minutes=5), sources=("vault",),
    anomalies=("dual_source_ip",),
)
def vault_dual_source_ip(tl: Timeline) -> None:
    nine = tl.start + timedelta(minutes=5)
    tl.vault_read(nine, TOKEN_B, "secret/production/database/password", "10.0.1.47")
    tl.vault_read(nine + timedelta(hours=1), TOKEN_B, "secret/production/database/password",
                  "185.234.219.12")
    for i in range(6):
        t = nine + timedelta(minutes=10 * i)
        tl.vault_read(t, ROLLING, "secret/production/cart/redis", "10.0.1.52")
        tl.vault_read(t + timedelta(seconds=3), ROLLING, "secret/production/cart/redis", "10.0.1.53")


SHARED = VaultToken("tok_Sh4red", "userpass-contractor", ("default", "contractor"))
VPN_USER = VaultToken("tok_Vpn0nly", "userpass-oncall", ("default", "oncall"))


@scenario(
    "vault_multiple_external_ips",
    "tok_Sh4red reads from three external addresses within 40 minutes (shared token / rotating "
    "attacker infrastructure). Near miss: tok_Vpn0nly always reads from the same external "
    "address.",
    start=TUESDAY_10, sources=("vault",), anomalies=("multiple_external_ips",),
)
def vault_multiple_external_ips(tl: Timeline) -> None:
    for i, ip in enumerate(["203.0.113.10", "198.51.100.77", "192.0.2.200"]):
        tl.vault_read(tl.at(minutes=20 * i), SHARED, "secret/production/orders/db-url", ip)
    for i in range(4):
        tl.vault_read(tl.at(minutes=15 * i + 2), VPN_USER, "secret/ops/pagerduty", "198.18.7.7")


STRIPE = "secret/production/stripe/api-key"
PAYMENTS_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "payments", "namespace": "production",
                 "annotations": {"secretsight.io/secret-paths": STRIPE}},
    "spec": {"template": {"metadata": {"labels": {"app": "payments"}}}},
}
OPERATOR = VaultToken("tok_0perator", "oidc-jane.doe", ("default", "payments-admin"))


@scenario(
    "vault_rotation_without_deploy",
    "At 14:23:07 secret/production/stripe/api-key is written and in the next 30 minutes no "
    "consumer restarts and nobody reads the new value. Near miss: the database-password "
    "rotation followed by a rollout restart of app-backend and a read by its agent.",
    start=MONDAY + timedelta(days=1, hours=13), sources=("vault", "kubernetes"),
    anomalies=("rotation_without_read", "rotation_without_deploy"),
)
def vault_rotation_without_deploy(tl: Timeline) -> None:
    start, end = _span(tl, hours=2, minutes=30)
    act.deployment_update(tl, tl.at(minutes=5), act.APP_BACKEND_DEPLOYMENT)
    act.deployment_update(tl, tl.at(minutes=6), PAYMENTS_DEPLOYMENT)
    act.vault_agent(tl, start, end)
    write = start + timedelta(hours=1, minutes=23, seconds=7)
    tl.vault(write, OPERATOR, "update", STRIPE, "10.0.4.21",
             request_data={"data": {"key": "sk_live_x"}}, response_data={"version": 12})
    rot = start + timedelta(hours=1, minutes=5)
    tl.vault(rot, act.ROTATOR, "update", act.DB_PASSWORD, "10.0.4.9",
             request_data={"data": {"password": "n3w"}}, response_data={"version": 8})
    act.rollout_restart(tl, rot + timedelta(minutes=2), "production", "app-backend")


ADMIN = VaultToken("tok_Adm1n", "oidc-ops.admin", ("default", "admin"))
ADMIN_2 = VaultToken("tok_Adm1n2", "oidc-sre.lead", ("default", "admin"))


@scenario(
    "vault_admin_off_hours",
    "An admin token reads production secrets at 03:14 on a Sunday. Near misses: the same kind "
    "of token on Tuesday at 10:00, and another inside the Sunday 02:00-03:00 patching window.",
    start=SUNDAY, sources=("vault",), anomalies=("admin_off_hours",),
    config={"maintenance_windows": [
        {"name": "business_hours", "time_intervals": [
            {"weekdays": ["monday:friday"], "times": [{"start_time": "06:00", "end_time": "22:00"}]}]},
        {"name": "sunday_patching", "time_intervals": [
            {"weekdays": ["sunday"], "times": [{"start_time": "02:00", "end_time": "03:00"}]}]},
    ]},
)
def vault_admin_off_hours(tl: Timeline) -> None:
    tl.vault_read(tl.at(hours=2, minutes=30), ADMIN_2, "sys/policies/acl/payments", "10.0.9.4",
                  kv2=False, mount_type="system")
    for i, path in enumerate(["secret/production/database/password", STRIPE]):
        tl.vault_read(tl.at(hours=3, minutes=14, seconds=5 * i), ADMIN, path, "10.0.9.5")
    tl.vault_read(tl.at(days=2, hours=10), ADMIN, STRIPE, "10.0.9.5")


PAYMENT_SVC = VaultToken("tok_paym3nt", "kubernetes-payment-service", ("default", "payment"))
NEWCOMER = VaultToken("tok_n3wc0mer", "kubernetes-fraud-scoring", ("default", "fraud"))
PAYMENT_PATHS = ["secret/production/database/payment-db", "secret/production/payments/psp-key",
                 "secret/production/payments/webhook"]


@scenario(
    "vault_first_path_access",
    "payment-service has read its three payment paths every 15 minutes for 20 days; then it "
    "reads secret/admin/certificates/signing-key for the first time. Near miss: a service "
    "deployed two days ago keeps discovering new paths (still learning).",
    start=MONDAY - timedelta(days=20), sources=("vault",), anomalies=("first_path_access",),
)
def vault_first_path_access(tl: Timeline) -> None:
    start, end = _span(tl, days=20, hours=10)
    for i, t in enumerate(act.every(start, end, 900, 3, tl)):
        tl.vault_read(t, PAYMENT_SVC, PAYMENT_PATHS[i % 3], f"10.0.1.{70 + i % 2}")
    tl.vault_read(end + timedelta(minutes=7), PAYMENT_SVC, "secret/admin/certificates/signing-key",
                  "10.0.1.70")
    new = end - timedelta(days=2)
    for i in range(6):
        tl.vault_read(new + timedelta(hours=7 * i), NEWCOMER, f"secret/production/fraud/m{i}",
                      "10.0.1.90")


FORMER = VaultToken("tok_f0rmer", "oidc-bob.former", ("default", "engineering"))
VACATION = VaultToken("tok_vacati0n", "oidc-carol.oncall", ("default", "engineering"))


@scenario(
    "vault_dormant_identity",
    "A former employee's token read one secret daily for ten days, then stayed silent 60 days "
    "and comes back. Near miss: a colleague back from 29 days of holiday.",
    start=MONDAY - timedelta(days=75), sources=("vault",), anomalies=("dormant_identity",),
)
def vault_dormant_identity(tl: Timeline) -> None:
    for d in range(10):
        tl.vault_read(tl.at(days=d, hours=11), FORMER, "secret/engineering/github-token", "10.0.7.12")
        tl.vault_read(tl.at(days=d + 36, hours=11), VACATION, "secret/engineering/pagerduty",
                      "10.0.7.13")
    tl.vault_read(tl.at(days=70, hours=15), FORMER, "secret/engineering/github-token", "10.0.7.12")
    tl.vault_read(tl.at(days=45 + 29, hours=12), VACATION, "secret/engineering/pagerduty",
                  "10.0.7.13")


INSIDER = VaultToken("tok_1ns1der", "oidc-dave.dev", ("default", "engineering-broad"))
INSIDER_PATHS = ["secret/engineering/ci/token", "secret/engineering/sentry/dsn",
                 "secret/engineering/github-token", "secret/staging/database/password"]
OUTSIDE_PATHS = ["secret/production/payments/psp-key", "secret/production/billing/stripe-key",
                 "secret/hr/payroll/api-key"]


@scenario(
    "vault_insider",
    "A developer with an over-broad policy read four team paths in business hours for three "
    "weeks, then reads three production/HR secrets outside that history. Near miss: the same "
    "developer reading a known path late in the evening.",
    start=MONDAY - timedelta(days=21), sources=("vault",), anomalies=("first_path_access",),
)
def vault_insider(tl: Timeline) -> None:
    for d in range(21):
        for i, path in enumerate(INSIDER_PATHS):
            tl.vault_read(tl.at(days=d, hours=9 + 2 * i, minutes=tl.rng.randint(0, 59)), INSIDER,
                          path, "10.0.7.40")
    tl.vault_read(tl.at(days=21, hours=21, minutes=40), INSIDER, INSIDER_PATHS[0], "10.0.7.40")
    for i, path in enumerate(OUTSIDE_PATHS):
        tl.vault_read(tl.at(days=22, hours=14, minutes=2 * i), INSIDER, path, "10.0.7.40")


@scenario(
    "vault_audit_disabled",
    "Busy Vault traffic (token lookups every 2 s); an admin disables the file audit device and the log "
    "goes silent. Near miss: the same admin enables a second (socket) device minutes before.",
    start=TUESDAY_10, sources=("vault",), anomalies=("audit_disabled", "audit_gap"),
)
def vault_audit_disabled(tl: Timeline) -> None:
    act.vault_heartbeat(tl, tl.start, tl.at(minutes=10), period=2)
    tl.vault(tl.at(minutes=3), ADMIN, "update", "sys/audit/socket", "10.0.9.5",
             kv2=False, mount_type="system", request_data={"type": "socket"})
    # The disable request reaches the device; its response does not.
    tl.vault(tl.at(minutes=10, seconds=1), ADMIN, "delete", "sys/audit/file", "10.0.9.5",
             kv2=False, mount_type="system", with_response=False)


ROOT = VaultToken("tok_r00t", "root", ("root",), ttl=0, entity=None)  # root: no entity


@scenario(
    "vault_root_token",
    "A root token reads production secrets and a root-token generation is started. Near miss: "
    "an admin (non-root) token doing the same reads in business hours.",
    start=TUESDAY_10, sources=("vault",), anomalies=("root_token",),
)
def vault_root_token(tl: Timeline) -> None:
    tl.vault(tl.at(minutes=1), ADMIN, "update", "sys/generate-root/attempt", "10.0.9.5",
             kv2=False, mount_type="system", request_data={"pgp_key": "x"})
    for i in range(3):
        tl.vault_read(tl.at(minutes=5, seconds=20 * i), ROOT, f"secret/production/k{i}", "10.0.9.5")
        tl.vault_read(tl.at(minutes=30, seconds=20 * i), ADMIN, f"secret/production/k{i}", "10.0.9.5")


@scenario(
    "vault_long_ttl_token",
    "A token with a 30-day TTL is created. Near miss: a 12-hour token.",
    start=TUESDAY_10, sources=("vault",), anomalies=("long_ttl_token",),
)
def vault_long_ttl_token(tl: Timeline) -> None:
    for minute, ttl in [(2, 43200), (9, 2592000)]:
        tl.vault(tl.at(minutes=minute), OPERATOR, "update", "auth/token/create", "10.0.4.21",
                 kv2=False, mount_type="token", request_data={"ttl": f"{ttl}s"},
                 response_auth={"accessor": f"tok_child_{ttl}", "client_token": "hmac-sha256:00",
                                "policies": ["default", "payments"],
                                "token_policies": ["default", "payments"], "token_ttl": ttl,
                                "token_type": "service"})


@scenario(
    "vault_secret_destruction",
    "A developer token destroys all versions of a production secret and deletes its metadata. "
    "Near miss: the same token writing a new version, which the application then reads.",
    start=TUESDAY_10, sources=("vault",), anomalies=("secret_destruction",),
)
def vault_secret_destruction(tl: Timeline) -> None:
    tl.vault(tl.at(minutes=1), INSIDER, "update", "secret/destroy/staging/feature-flags",
             "10.0.7.40", kv2=False, mount_type="kv", request_data={"versions": [1, 2, 3]})
    tl.vault(tl.at(minutes=2), INSIDER, "delete", "secret/metadata/staging/feature-flags",
             "10.0.7.40", kv2=False, mount_type="kv")
    tl.vault_read(tl.at(minutes=20), INSIDER, "secret/staging/feature-flags", "10.0.7.40")
    tl.vault(tl.at(minutes=21), INSIDER, "update", "secret/staging/feature-flags", "10.0.7.40",
             request_data={"data": {"beta": "on"}}, response_data={"version": 4})
    tl.vault_read(tl.at(minutes=24), act.AGENT, "secret/staging/feature-flags", "10.0.1.20")


@scenario(
    "vault_policy_exposure",
    "A non-admin token rewrites an ACL policy. Near miss: an admin token writing a policy.",
    start=TUESDAY_10, sources=("vault",), anomalies=("policy_exposure",),
)
def vault_policy_exposure(tl: Timeline) -> None:
    for minute, token in [(3, ADMIN), (17, INSIDER)]:
        tl.vault(tl.at(minutes=minute), token, "update", "sys/policies/acl/engineering-broad",
                 "10.0.7.40", kv2=False, mount_type="system",
                 request_data={"policy": 'path "secret/*" { capabilities = ["read","list"] }'})


@scenario(
    "vault_enumeration",
    "An application token walks the secret mount's metadata tree (five prefixes in two "
    "minutes). Near misses: an admin token listing it, and the Vault Agent listing its one "
    "prefix every few minutes.",
    start=TUESDAY_10, sources=("vault",), anomalies=("namespace_enumeration",),
)
def vault_enumeration(tl: Timeline) -> None:
    tl.vault(tl.at(minutes=2), ADMIN, "list", "secret/production", "10.0.9.5",
             response_data={"keys": ["database/", "stripe/"]})
    for i in range(6):  # one prefix, again and again: not enumeration
        tl.vault(tl.at(minutes=3 + 5 * i), act.AGENT, "list", "secret/production/app-backend",
                 "10.0.1.47", response_data={"keys": ["db", "cache"]})
    for i, prefix in enumerate(("secret/production", "secret/production/database",
                                "secret/production/stripe", "secret/staging", "secret/legacy")):
        tl.vault(tl.at(minutes=8, seconds=20 * i), HARVESTER, "list", prefix, "10.0.1.33",
                 response_data={"keys": ["database/", "stripe/"]})


DENIED = "1 error occurred:\n\t* permission denied\n\n"


@scenario(
    "vault_denied_burst",
    "tok_pr0be probes 12 paths it may not read within 6 minutes (all permission denied). Near "
    "miss: tok_typ0 mistypes a path 9 times in 15 minutes.",
    start=TUESDAY_10, sources=("vault",), anomalies=("denied_burst",),
)
def vault_denied_burst(tl: Timeline) -> None:
    probe = VaultToken("tok_pr0be", "kubernetes-frontend", ("default", "frontend"))
    typo = VaultToken("tok_typ0", "oidc-erin.dev", ("default", "engineering"))
    for i in range(9):
        tl.vault(tl.at(minutes=1 + 1.5 * i), typo, "read", "secret/production/orders/db-ulr",
                 "10.0.7.41", error=DENIED)
    for i in range(12):
        tl.vault(tl.at(minutes=30, seconds=30 * i), probe, "read",
                 HARVEST_PATHS[i], "10.0.1.99", error=DENIED)


@scenario(
    "vault_decoy_access",
    "A token reads the decoy secret/production/legacy/aws-root-keys. Near miss: the same token "
    "reads a neighbouring real path.",
    start=TUESDAY_10, sources=("vault",), anomalies=("decoy_access",),
    config={"decoy_paths": ["secret/production/legacy/aws-root-keys", "prod/legacy/*"]},
)
def vault_decoy_access(tl: Timeline) -> None:
    tl.vault_read(tl.at(minutes=1), HARVESTER, "secret/production/legacy/app-config", "10.0.1.33")
    tl.vault_read(tl.at(minutes=2), HARVESTER, "secret/production/legacy/aws-root-keys", "10.0.1.33")


# ------------------------------------------------------------------------------------------
# AWS Secrets Manager (CloudTrail)

STOLEN_KEY = AwsPrincipal("svc-backup", kind="user", access_key="AKIA5STOLENKEY000001")
APP_ROLE = AwsPrincipal("orders-api", session="i-0a1b2c3d4e5f60001")
PLATFORM_ADMIN = AwsPrincipal("platform-admin", session="alice@example.com")
BILLING_WORKER = AwsPrincipal("billing-worker", session="i-0a1b2c3d4e5f60002")
AWS_ADMIN_CONFIG = {"admin_identities": {"aws_arns": ["arn:aws:iam::123456789012:role/platform-admin"]}}


@scenario(
    "aws_secret_sweep",
    "An IAM user's access key calls GetSecretValue on 30 secrets in 10 minutes from "
    "203.0.113.50, never seen before. Near miss: the orders-api role reads 19 distinct "
    "secrets in 10 minutes during a migration.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("path_diversity",),
)
def aws_secret_sweep(tl: Timeline) -> None:
    for i in range(19):
        tl.cloudtrail(tl.at(minutes=1, seconds=30 * i), APP_ROLE, "GetSecretValue", "10.0.2.31",
                      secret=f"prod/orders/shard-{i:02d}")
    for i in range(30):
        tl.cloudtrail(tl.at(minutes=30, seconds=19 * i), STOLEN_KEY, "GetSecretValue",
                      "203.0.113.50", secret=f"prod/app-{i:02d}/credentials",
                      user_agent="aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22")


@scenario(
    "aws_list_secrets",
    "The orders-api application role calls ListSecrets, then reads three secrets it never "
    "used. Near misses: the platform-admin role (a configured admin) lists them in business "
    "hours, and the billing-worker role lists once and reads its own secret.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("namespace_enumeration",),
    config=AWS_ADMIN_CONFIG,
)
def aws_list_secrets(tl: Timeline) -> None:
    tl.cloudtrail(tl.at(minutes=3), PLATFORM_ADMIN, "ListSecrets", "10.0.9.8",
                  request={"maxResults": 100})
    tl.cloudtrail(tl.at(minutes=12), APP_ROLE, "ListSecrets", "10.0.2.31",
                  request={"maxResults": 100})
    for i, secret in enumerate(("prod/billing/stripe", "prod/hr/payroll-db", "prod/ci/deploy-key")):
        tl.cloudtrail(tl.at(minutes=13, seconds=30 * i), APP_ROLE, "GetSecretValue", "10.0.2.31",
                      secret=secret)
    tl.cloudtrail(tl.at(minutes=20), BILLING_WORKER, "ListSecrets", "10.0.2.40",
                  request={"maxResults": 100})
    tl.cloudtrail(tl.at(minutes=20, seconds=5), BILLING_WORKER, "GetSecretValue", "10.0.2.40",
                  secret="prod/billing/stripe")


@scenario(
    "aws_audit_disabled",
    "CloudTrail logging is stopped, and EKS control-plane audit logging is switched off. Near "
    "miss: a trail's tags are updated.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("audit_disabled", "audit_gap"),
    config=AWS_ADMIN_CONFIG,
)
def aws_audit_disabled(tl: Timeline) -> None:
    act.cloudtrail_heartbeat(tl, tl.start, tl.at(minutes=20), period=5)
    trail = "arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail"
    tl.cloudtrail(tl.at(minutes=4), PLATFORM_ADMIN, "AddTags", "10.0.9.8",
                  source="cloudtrail.amazonaws.com", request={"resourceId": trail})
    tl.cloudtrail(tl.at(minutes=18), STOLEN_KEY, "UpdateClusterConfig", "203.0.113.50",
                  source="eks.amazonaws.com", request={
                      "name": "prod", "logging": {"clusterLogging": [
                          {"types": ["audit", "api"], "enabled": False}]}})
    tl.cloudtrail(tl.at(minutes=20, seconds=5), STOLEN_KEY, "StopLogging", "203.0.113.50",
                  source="cloudtrail.amazonaws.com", request={"name": trail})


@scenario(
    "aws_rotation_without_read",
    "PutSecretValue replaces prod/billing/stripe, which orders-api read earlier, and no "
    "application reads it for 30 minutes. Near misses: prod/orders/db is rotated and orders-api "
    "reads it two minutes later; the admin rewrites prod/admin/notes that only it reads.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("rotation_without_read",),
)
def aws_rotation_without_read(tl: Timeline) -> None:
    # Both secrets have a consumer before they are rotated.
    tl.cloudtrail(tl.at(seconds=10), APP_ROLE, "GetSecretValue", "10.0.2.31", secret="prod/orders/db")
    tl.cloudtrail(tl.at(seconds=20), APP_ROLE, "GetSecretValue", "10.0.2.31",
                  secret="prod/billing/stripe")
    tl.cloudtrail(tl.at(seconds=30), PLATFORM_ADMIN, "GetSecretValue", "10.0.9.8",
                  secret="prod/admin/notes")
    tl.cloudtrail(tl.at(minutes=2), PLATFORM_ADMIN, "PutSecretValue", "10.0.9.8",
                  secret="prod/admin/notes", read_only=False)
    tl.cloudtrail(tl.at(minutes=1), PLATFORM_ADMIN, "PutSecretValue", "10.0.9.8",
                  secret="prod/orders/db", read_only=False)
    tl.cloudtrail(tl.at(minutes=3), APP_ROLE, "GetSecretValue", "10.0.2.31", secret="prod/orders/db")
    tl.cloudtrail(tl.at(minutes=10), PLATFORM_ADMIN, "PutSecretValue", "10.0.9.8",
                  secret="prod/billing/stripe", read_only=False)
    tl.cloudtrail(tl.at(minutes=55), APP_ROLE, "GetSecretValue", "10.0.2.31", secret="prod/orders/db")


@scenario(
    "aws_destruction_and_exposure",
    "The stolen key schedules a secret for deletion and attaches a resource policy granting "
    "`*`. Near miss: a resource policy restricted to one account role.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("secret_destruction", "policy_exposure"),
)
def aws_destruction_and_exposure(tl: Timeline) -> None:
    ok = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":'
          '"arn:aws:iam::123456789012:role/orders-api"},"Action":"secretsmanager:GetSecretValue",'
          '"Resource":"*"}]}')
    public = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
              '"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}')
    tl.cloudtrail(tl.at(minutes=2), PLATFORM_ADMIN, "PutResourcePolicy", "10.0.9.8",
                  secret="prod/orders/db", request={"resourcePolicy": ok}, read_only=False)
    tl.cloudtrail(tl.at(minutes=7), STOLEN_KEY, "PutResourcePolicy", "203.0.113.50",
                  secret="prod/billing/stripe", request={"resourcePolicy": public}, read_only=False)
    tl.cloudtrail(tl.at(minutes=9), STOLEN_KEY, "DeleteSecret", "203.0.113.50",
                  secret="prod/billing/stripe", request={"recoveryWindowInDays": 7}, read_only=False)


ROOT_USER = AwsPrincipal("root", kind="root", access_key="ASIAROOTSESSION00001")


@scenario(
    "aws_admin_off_hours",
    "The AWS root user reads a secret at 03:14 on a Sunday. Near miss: the platform-admin role "
    "on Tuesday at 10:00.",
    start=SUNDAY, sources=("cloudtrail",), anomalies=("admin_off_hours",), config=AWS_ADMIN_CONFIG,
)
def aws_admin_off_hours(tl: Timeline) -> None:
    tl.cloudtrail(tl.at(hours=3, minutes=14), ROOT_USER, "GetSecretValue", "198.51.100.23",
                  secret="prod/billing/stripe", user_agent="console.amazonaws.com")
    tl.cloudtrail(tl.at(days=2, hours=10), PLATFORM_ADMIN, "GetSecretValue", "10.0.9.8",
                  secret="prod/billing/stripe")


@scenario(
    "aws_denied_burst",
    "A role without permission tries 12 secrets in 5 minutes (AccessDenied). Near miss: 9 "
    "denied calls by another role in 15 minutes.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("denied_burst",),
)
def aws_denied_burst(tl: Timeline) -> None:
    probe = AwsPrincipal("frontend", session="i-0fe0000000000001")
    for i in range(9):
        tl.cloudtrail(tl.at(minutes=1.5 * i), APP_ROLE, "GetSecretValue", "10.0.2.31",
                      secret="prod/orders/legacy", error="AccessDeniedException")
    for i in range(12):
        tl.cloudtrail(tl.at(minutes=40, seconds=25 * i), probe, "GetSecretValue", "10.0.2.77",
                      secret=f"prod/app-{i:02d}/credentials", error="AccessDeniedException")


# ------------------------------------------------------------------------------------------
# Kubernetes

SWEEPER = K8sUser.service_account("ci", "builder")
ESO_SA = K8sUser.service_account("external-secrets", "external-secrets")
NAMESPACES = ["payments", "orders", "search", "mail", "auth", "billing", "cdn", "metrics",
              "kube-system", "monitoring", "ingress", "default"]


@scenario(
    "k8s_secret_sweep",
    "The ci/builder service account lists secrets cluster-wide with curl, then reads 60 secrets "
    "across 12 namespaces in 3 minutes; a contractor's kubeconfig lists the secrets of three "
    "namespaces one by one. Near misses: External Secrets Operator (allowlisted) reading 12 "
    "secrets; kube-state-metrics and the namespace controller listing secrets (platform "
    "controllers); a developer's lists of two namespaces, the second refused (403).",
    start=TUESDAY_10, sources=("kubernetes",),
    anomalies=("namespace_enumeration", "suspicious_user_agent", "workload_identity_read",
               "bulk_read", "path_diversity"),
)
def k8s_secret_sweep(tl: Timeline) -> None:
    act.k8s_heartbeat(tl, tl.start, tl.at(minutes=30))
    for i, ns in enumerate(NAMESPACES):
        tl.k8s(tl.at(minutes=1, seconds=2 * i), ESO_SA, "get", "secrets", "10.0.0.40",
               namespace=ns, name="app-credentials", user_agent="external-secrets/v0.9.13")
    curl = "curl/8.5.0"
    tl.k8s(tl.at(minutes=10), SWEEPER, "list", "secrets", "10.0.3.14", user_agent=curl)
    for i in range(60):
        ns = NAMESPACES[i % len(NAMESPACES)]
        tl.k8s(tl.at(minutes=10, seconds=3 + 3 * i), SWEEPER, "get", "secrets", "10.0.3.14",
               namespace=ns, name=f"secret-{i // len(NAMESPACES)}", user_agent=curl)
    contractor = K8sUser("dana.contractor@example.com", ("contractors", "system:authenticated"))
    for i, ns in enumerate(("payments", "orders", "auth")):
        tl.k8s(tl.at(minutes=20, seconds=40 * i), contractor, "list", "secrets", "10.0.7.90",
               namespace=ns)
    ksm = K8sUser.service_account("monitoring", "kube-state-metrics")
    tl.k8s(tl.at(minutes=2), ksm, "list", "secrets", "10.0.0.50", query="limit=500",
           user_agent="v2.10.0")
    nsc = K8sUser.service_account("kube-system", "namespace-controller")
    for i, ns in enumerate(("preview-41", "preview-42", "preview-43")):
        tl.k8s(tl.at(minutes=3, seconds=5 * i), nsc, "list", "secrets", "10.0.0.10",
               namespace=ns, user_agent="kube-controller-manager/v1.29.2 (linux/amd64) "
               "kubernetes/4b8e819/system:serviceaccount:kube-system:namespace-controller")
    dev = K8sUser("heidi@example.com", ("developers", "system:authenticated"))
    tl.k8s(tl.at(minutes=25), dev, "list", "secrets", "10.0.7.70", namespace="search")
    tl.k8s(tl.at(minutes=25, seconds=20), dev, "list", "secrets", "10.0.7.70",
           namespace="kube-system", code=403)


@scenario(
    "k8s_impersonation",
    "A user impersonates system:masters to read a secret. Near miss: impersonating an "
    "ordinary group to test RBAC.",
    start=TUESDAY_10, sources=("kubernetes",), anomalies=("privileged_impersonation",),
)
def k8s_impersonation(tl: Timeline) -> None:
    dev = K8sUser("frank@example.com", ("developers", "system:authenticated"))
    tl.k8s(tl.at(minutes=2), dev, "get", "secrets", "10.0.7.50", namespace="staging", name="db",
           impersonate=K8sUser("test-user", ("developers",)))
    tl.k8s(tl.at(minutes=9), dev, "get", "secrets", "10.0.7.50", namespace="payments", name="psp",
           impersonate=K8sUser("admin", ("system:masters",)))


@scenario(
    "k8s_rbac_and_deletion",
    "A Role granting get/list on secrets is created and a secret is deleted by a developer. "
    "Near misses: a Role on configmaps only, and kube-system's controller deleting a secret.",
    start=TUESDAY_10, sources=("kubernetes",), anomalies=("policy_exposure", "secret_destruction"),
)
def k8s_rbac_and_deletion(tl: Timeline) -> None:
    dev = K8sUser("frank@example.com", ("developers", "system:authenticated"))
    for minute, resources, name in [(1, ["configmaps"], "cm-reader"), (5, ["secrets"], "sneaky")]:
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name, "namespace": "payments"},
                "rules": [{"apiGroups": [""], "resources": resources, "verbs": ["get", "list"]}]}
        tl.k8s(tl.at(minutes=minute), dev, "create", "roles", "10.0.7.50", namespace="payments",
               api_group="rbac.authorization.k8s.io", level="RequestResponse", request_object=role)
    gc = K8sUser.service_account("kube-system", "generic-garbage-collector")
    tl.k8s(tl.at(minutes=7), gc, "delete", "secrets", "10.0.0.10", namespace="payments",
           name="old-token", user_agent="kube-controller-manager/v1.29.2")
    tl.k8s(tl.at(minutes=11), dev, "delete", "secrets", "10.0.7.50", namespace="payments",
           name="psp-credentials")


@scenario(
    "k8s_admin_off_hours",
    "A system:masters user reads secrets at 03:14 on a Sunday. Near miss: the same user on "
    "Tuesday at 10:00.",
    start=SUNDAY, sources=("kubernetes",), anomalies=("admin_off_hours",),
)
def k8s_admin_off_hours(tl: Timeline) -> None:
    admin = K8sUser("kubernetes-admin", ("system:masters", "system:authenticated"))
    tl.k8s(tl.at(hours=3, minutes=14), admin, "get", "secrets", "10.0.7.60", namespace="payments",
           name="psp-credentials")
    tl.k8s(tl.at(days=2, hours=10), admin, "get", "secrets", "10.0.7.60", namespace="payments",
           name="psp-credentials")


@scenario(
    "k8s_denied_burst",
    "A stolen kubeconfig (a contractor's OIDC identity) is refused 12 secret reads in 4 "
    "minutes. Near miss: another user refused 9 times in 15 minutes.",
    start=TUESDAY_10, sources=("kubernetes",),
    anomalies=("denied_burst",),
)
def k8s_denied_burst(tl: Timeline) -> None:
    web = K8sUser("contractor@example.com", ("contractors", "system:authenticated"))
    other = K8sUser("grace@example.com", ("developers", "system:authenticated"))
    for i in range(9):
        tl.k8s(tl.at(minutes=1.6 * i), other, "get", "secrets", "10.0.3.21", namespace="payments",
               name="psp", code=403, user_agent="assets/1.0")
    for i in range(12):
        tl.k8s(tl.at(minutes=40, seconds=20 * i), web, "get", "secrets", "10.0.3.20",
               namespace=NAMESPACES[i], name="credentials", code=403, user_agent="frontend/2.3")


# ------------------------------------------------------------------------------------------
# Cross-source

@scenario(
    "cross_store_harvest",
    "One host (10.0.3.77) reads from Vault, Secrets Manager and the Kubernetes API within 6 "
    "minutes with three stolen credentials. Near miss: an app reading Vault and, 40 minutes "
    "later, Secrets Manager from the same address.",
    start=TUESDAY_10, sources=("vault", "cloudtrail", "kubernetes"),
    anomalies=("cross_store_harvest",),
)
def cross_store_harvest(tl: Timeline) -> None:
    app = VaultToken("tok_h0st_app", "kubernetes-ledger", ("default", "ledger"))
    tl.vault_read(tl.at(minutes=1), app, "secret/production/ledger/db", "10.0.3.60")
    tl.cloudtrail(tl.at(minutes=41), APP_ROLE, "GetSecretValue", "10.0.3.60", secret="prod/orders/db")
    tl.vault_read(tl.at(minutes=60), HARVESTER, "secret/production/database/password", "10.0.3.77")
    tl.cloudtrail(tl.at(minutes=62), STOLEN_KEY, "GetSecretValue", "10.0.3.77",
                  secret="prod/billing/stripe")
    tl.k8s(tl.at(minutes=66), K8sUser("system:serviceaccount:payments:api", (
        "system:serviceaccounts", "system:authenticated")), "get", "secrets", "10.0.3.77",
        namespace="payments", name="psp", user_agent="kubectl/v1.29.2 (linux/amd64)")


# ------------------------------------------------------------------------------------------
# The bundled demo (examples/): `secretsight scan examples/`

@scenario(
    "demo",
    "Six hours of a Sunday night in all three stores: normal agents, External Secrets Operator, "
    "Secrets Manager apps and controllers, plus a Vault token harvest, a token used from inside "
    "and outside, an admin token at 03:14, a stolen IAM key sweeping secrets, an application "
    "role listing secrets and a service account sweeping Kubernetes secrets with curl.",
    start=SUNDAY + timedelta(hours=1), sources=("vault", "cloudtrail", "kubernetes"),
    anomalies=("bulk_read", "path_diversity", "dual_source_ip", "admin_off_hours",
               "namespace_enumeration", "suspicious_user_agent", "workload_identity_read"),
)
def demo(tl: Timeline) -> None:
    start, end = _span(tl, hours=6)
    act.vault_agent(tl, start, end, period=600)
    act.secrets_manager_apps(tl, start, end, period=900)
    act.controllers(tl, start, end, period=1800)
    for i in range(6):
        tl.vault_read(tl.at(minutes=25 + 60 * i), act.ESO, act.ESO_SECRETS[i], "10.0.1.200")
    burst = tl.at(hours=1, minutes=40)
    for i in range(80):
        tl.vault_read(burst + timedelta(seconds=2.2 * i), HARVESTER,
                      HARVEST_PATHS[i % 40], "10.0.1.33")
    tl.vault_read(tl.at(hours=2), TOKEN_B, "secret/production/database/password", "10.0.1.47")
    tl.vault_read(tl.at(hours=2, minutes=50), TOKEN_B, "secret/production/database/password",
                  "185.234.219.12")
    for i, path in enumerate(["secret/production/database/password", STRIPE]):
        tl.vault_read(tl.at(hours=2, minutes=14, seconds=5 * i), ADMIN, path, "10.0.9.5")
    for i in range(25):
        tl.cloudtrail(tl.at(hours=4, seconds=17 * i), STOLEN_KEY, "GetSecretValue",
                      "203.0.113.50", secret=f"prod/app-{i:02d}/credentials",
                      user_agent="aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22")
    tl.cloudtrail(tl.at(hours=4, minutes=30), APP_ROLE, "ListSecrets", "10.0.2.31",
                  request={"maxResults": 100})
    curl = "curl/8.5.0"
    tl.k8s(tl.at(hours=5), SWEEPER, "list", "secrets", "10.0.3.14", user_agent=curl)
    for i in range(20):
        tl.k8s(tl.at(hours=5, seconds=4 + 4 * i), SWEEPER, "get", "secrets", "10.0.3.14",
               namespace=NAMESPACES[i % len(NAMESPACES)], name="app-credentials",
               user_agent=curl)


# ------------------------------------------------------------------------------------------
# More classes per source

@scenario(
    "aws_dual_source_ip",
    "The orders-api role's credentials read a secret from its instance (10.0.2.31) and, 40 "
    "minutes later, from 185.234.219.12 with python-requests. Near miss: the billing-worker "
    "role from two internal instances at once.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("dual_source_ip", "suspicious_user_agent"),
)
def aws_dual_source_ip(tl: Timeline) -> None:
    billing = AwsPrincipal("billing-worker", session="i-0a1b2c3d4e5f60002")
    for i in range(4):
        tl.cloudtrail(tl.at(minutes=10 * i), billing, "GetSecretValue", "10.0.2.44",
                      secret="prod/billing/stripe")
        tl.cloudtrail(tl.at(minutes=10 * i, seconds=2), billing, "GetSecretValue", "10.0.2.45",
                      secret="prod/billing/stripe")
    tl.cloudtrail(tl.at(minutes=5), APP_ROLE, "GetSecretValue", "10.0.2.31", secret="prod/orders/db")
    tl.cloudtrail(tl.at(minutes=45), APP_ROLE, "GetSecretValue", "185.234.219.12",
                  secret="prod/orders/db", user_agent="python-requests/2.31.0")


HISTORIAN = AwsPrincipal("reporting-etl", session="etl-batch")
LEAVER = AwsPrincipal("mallory.leaver", kind="user", access_key="AKIALEAVERKEY0000001")


@scenario(
    "aws_first_path_and_dormant",
    "The reporting-etl role read its three secrets nightly for three weeks, then reads "
    "prod/billing/stripe; an IAM user silent for 45 days reads a secret again. Near misses: the "
    "ETL reading a known secret at an unusual hour, a user back after 20 days.",
    start=MONDAY - timedelta(days=60), sources=("cloudtrail",),
    anomalies=("first_path_access", "dormant_identity"),
)
def aws_first_path_and_dormant(tl: Timeline) -> None:
    etl_secrets = ["prod/reporting/warehouse", "prod/reporting/s3-key", "prod/reporting/looker"]
    other = AwsPrincipal("nina.analyst", kind="user", access_key="AKIANINAKEY000000001")
    for d in range(5):
        tl.cloudtrail(tl.at(days=d, hours=9), LEAVER, "GetSecretValue", "10.0.8.3",
                      secret="prod/reporting/looker")
        tl.cloudtrail(tl.at(days=30 + d, hours=9), other, "GetSecretValue", "10.0.8.4",
                      secret="prod/reporting/looker")
    for d in range(21):
        for i, secret in enumerate(etl_secrets):
            tl.cloudtrail(tl.at(days=38 + d, hours=2, minutes=i), HISTORIAN, "GetSecretValue",
                          "10.0.2.90", secret=secret)
    tl.cloudtrail(tl.at(days=59, hours=14), HISTORIAN, "GetSecretValue", "10.0.2.90",
                  secret=etl_secrets[0])
    tl.cloudtrail(tl.at(days=59, hours=15), HISTORIAN, "GetSecretValue", "10.0.2.90",
                  secret="prod/billing/stripe")
    tl.cloudtrail(tl.at(days=50, hours=10), LEAVER, "GetSecretValue", "10.0.8.3",
                  secret="prod/reporting/looker")
    tl.cloudtrail(tl.at(days=54, hours=10), other, "GetSecretValue", "10.0.8.4",
                  secret="prod/reporting/looker")


@scenario(
    "aws_decoy_access",
    "A stolen key reads the decoy prod/legacy/root-credentials. Near miss: reading "
    "prod/legacy-app/config (outside the decoy glob).",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("decoy_access",),
    config={"decoy_paths": ["secret/production/legacy/aws-root-keys", "prod/legacy/*"]},
)
def aws_decoy_access(tl: Timeline) -> None:
    tl.cloudtrail(tl.at(minutes=1), APP_ROLE, "GetSecretValue", "10.0.2.31",
                  secret="prod/legacy-app/config")
    tl.cloudtrail(tl.at(minutes=4), STOLEN_KEY, "GetSecretValue", "203.0.113.50",
                  secret="prod/legacy/root-credentials")


@scenario(
    "vault_suspicious_user_agent",
    "A token reads a secret with python-requests (the device logs the user-agent header). Near "
    "miss: the same read by Vault Agent's own client.",
    start=TUESDAY_10, sources=("vault",), anomalies=("suspicious_user_agent",),
)
def vault_suspicious_user_agent(tl: Timeline) -> None:
    tl.vault_read(tl.at(minutes=1), TOKEN_B, "secret/production/database/password", "10.0.1.47",
                  user_agent="Vault/1.15.4 (+https://www.vaultproject.io/; go1.21.5)")
    tl.vault_read(tl.at(minutes=6), TOKEN_B, "secret/production/database/password", "10.0.1.47",
                  user_agent="python-requests/2.31.0")


DEVELOPER = K8sUser("heidi@example.com", ("developers", "system:authenticated"))


@scenario(
    "k8s_dual_source_and_first_path",
    "A developer's kubeconfig read three staging secrets daily for three weeks from the office "
    "network; then it reads payments/psp-credentials from 185.234.219.12. Near miss: the same "
    "developer reading a known secret from the VPN range.",
    start=MONDAY - timedelta(days=21), sources=("kubernetes",),
    anomalies=("dual_source_ip", "first_path_access"),
)
def k8s_dual_source_and_first_path(tl: Timeline) -> None:
    names = ["db", "redis", "smtp"]
    for d in range(21):
        for i, name in enumerate(names):
            tl.k8s(tl.at(days=d, hours=10, minutes=i), DEVELOPER, "get", "secrets", "10.0.7.70",
                   namespace="staging", name=name)
    tl.k8s(tl.at(days=21, hours=9), DEVELOPER, "get", "secrets", "10.8.0.5",
           namespace="staging", name="db")
    tl.k8s(tl.at(days=21, hours=11), DEVELOPER, "get", "secrets", "10.0.7.70",
           namespace="staging", name="redis")
    tl.k8s(tl.at(days=21, hours=11, minutes=30), DEVELOPER, "get", "secrets", "185.234.219.12",
           namespace="payments", name="psp-credentials")


@scenario(
    "k8s_rotation_without_read",
    "A Secret that a developer reads is replaced (update) and no one reads it within 30 "
    "minutes. Near misses: another Secret updated, then read by a developer five minutes "
    "later; a Secret the ops bot writes and nobody else reads.",
    start=TUESDAY_10, sources=("kubernetes",), anomalies=("rotation_without_read",),
)
def k8s_rotation_without_read(tl: Timeline) -> None:
    ops = K8sUser("ops-bot@example.com", ("platform-deployers", "system:authenticated"))
    for name, namespace in (("smtp", "staging"), ("psp-credentials", "payments")):
        tl.k8s(tl.at(seconds=10), DEVELOPER, "get", "secrets", "10.0.7.70", namespace=namespace,
               name=name)  # the secrets have a consumer before they are rotated
    tl.k8s(tl.at(seconds=30), ops, "update", "secrets", "10.0.0.6", namespace="staging",
           name="ops-bot-state")  # written for itself: no consumer
    tl.k8s(tl.at(minutes=1), ops, "update", "secrets", "10.0.0.6", namespace="staging", name="smtp")
    tl.k8s(tl.at(minutes=6), DEVELOPER, "get", "secrets", "10.0.7.70", namespace="staging",
           name="smtp")
    tl.k8s(tl.at(minutes=20), ops, "update", "secrets", "10.0.0.6", namespace="payments",
           name="psp-credentials")
    tl.k8s(tl.at(minutes=80), DEVELOPER, "get", "secrets", "10.0.7.70", namespace="staging",
           name="redis")


@scenario(
    "k8s_external_and_decoy",
    "A developer's kubeconfig is used from two external addresses within half an hour and "
    "reads the decoy vault-migration/root-token. Near misses: a colleague always on one "
    "external address, and a read of vault-migration-tools/config (outside the decoy glob).",
    start=TUESDAY_10, sources=("kubernetes",), anomalies=("multiple_external_ips", "decoy_access"),
    config={"decoy_paths": ["vault-migration/*"]},
)
def k8s_external_and_decoy(tl: Timeline) -> None:
    remote = K8sUser("ivan@example.com", ("developers", "system:authenticated"))
    for i in range(3):
        tl.k8s(tl.at(minutes=5 * i), remote, "get", "secrets", "198.18.7.7", namespace="staging",
               name="db")
    tl.k8s(tl.at(minutes=16), remote, "get", "secrets", "198.18.7.7",
           namespace="vault-migration-tools", name="config")
    tl.k8s(tl.at(minutes=20), DEVELOPER, "get", "secrets", "203.0.113.10", namespace="staging",
           name="db")
    tl.k8s(tl.at(minutes=41), DEVELOPER, "get", "secrets", "192.0.2.200",
           namespace="vault-migration", name="root-token")


@scenario(
    "k8s_audit_gap_and_dormant",
    "The API server's audit stream (lease renewals every 10 s) stops for 5 minutes; after it "
    "resumes, an account unused for 40 days reads a secret. Near misses: 40-second pauses, and "
    "an account unused for 20 days.",
    start=TUESDAY_10 - timedelta(days=40), sources=("kubernetes",),
    anomalies=("audit_gap", "dormant_identity"),
)
def k8s_audit_gap_and_dormant(tl: Timeline) -> None:
    old = K8sUser("judy@example.com", ("developers", "system:authenticated"))
    recent = K8sUser("ken@example.com", ("developers", "system:authenticated"))
    tl.k8s(tl.at(hours=10), old, "get", "secrets", "10.0.7.80", namespace="staging", name="db")
    tl.k8s(tl.at(days=20, hours=10), recent, "get", "secrets", "10.0.7.81", namespace="staging",
           name="db")
    day = tl.at(days=40)
    act.k8s_heartbeat(tl, day, day + timedelta(minutes=10))
    act.k8s_heartbeat(tl, day + timedelta(minutes=10, seconds=40), day + timedelta(minutes=20))
    act.k8s_heartbeat(tl, day + timedelta(minutes=25), day + timedelta(minutes=40))
    tl.k8s(day + timedelta(minutes=30), old, "get", "secrets", "10.0.7.80", namespace="staging",
           name="db")
    tl.k8s(day + timedelta(minutes=31), recent, "get", "secrets", "10.0.7.81", namespace="staging",
           name="db")


ORDERS_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "orders", "namespace": "production",
                 "annotations": {"secretsight.io/secret-paths": "prod/orders/db"}},
    "spec": {"template": {"metadata": {"labels": {"app": "orders"}}}},
}
ROTATION_LAMBDA = AwsPrincipal("secretsmanager-rotation", session="rotation-lambda")


@scenario(
    "aws_rotation_without_deploy",
    "Secrets Manager rotates prod/billing/stripe (RotateSecret, then RotationSucceeded); its "
    "consumer production/payments (from `secret_consumers`) never restarts and nobody reads it. "
    "Near miss: prod/orders/db rotated, the annotated orders Deployment restarted and "
    "orders-api reading the new value.",
    start=TUESDAY_10, sources=("cloudtrail", "kubernetes"),
    anomalies=("rotation_without_read", "rotation_without_deploy"),
    config={"secret_consumers": {"prod/billing/stripe": ["production/payments"]}},
)
def aws_rotation_without_deploy(tl: Timeline) -> None:
    act.deployment_update(tl, tl.at(minutes=1), ORDERS_DEPLOYMENT)
    for minute, secret in [(5, "prod/orders/db"), (20, "prod/billing/stripe")]:
        tl.cloudtrail(tl.at(minutes=minute), PLATFORM_ADMIN, "RotateSecret", "10.0.9.8",
                      secret=secret, read_only=False)
        tl.cloudtrail(tl.at(minutes=minute, seconds=40), ROTATION_LAMBDA, "PutSecretValue",
                      "10.0.2.200", secret=secret, read_only=False)
    act.rollout_restart(tl, tl.at(minutes=7), "production", "orders")
    tl.cloudtrail(tl.at(minutes=8), APP_ROLE, "GetSecretValue", "10.0.2.31", secret="prod/orders/db")
    tl.cloudtrail(tl.at(minutes=70), APP_ROLE, "GetSecretValue", "10.0.2.31", secret="prod/orders/db")


@scenario(
    "aws_multiple_external_ips",
    "A stolen IAM key reads the same secret from three external addresses in 40 minutes. Near "
    "miss: an engineer's key always from one external (office) address.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("multiple_external_ips",),
)
def aws_multiple_external_ips(tl: Timeline) -> None:
    engineer = AwsPrincipal("olivia.eng", kind="user", access_key="AKIAOLIVIAKEY0000001")
    for i in range(3):
        tl.cloudtrail(tl.at(minutes=10 * i), engineer, "GetSecretValue", "198.18.7.7",
                      secret="prod/reporting/looker")
    for i, ip in enumerate(["203.0.113.10", "198.51.100.77", "192.0.2.200"]):
        tl.cloudtrail(tl.at(minutes=5 + 15 * i), STOLEN_KEY, "GetSecretValue", ip,
                      secret="prod/billing/stripe")


@scenario(
    "vault_audit_tampering",
    "An admin token calls sys/audit-hash/file (the HMAC oracle that confirms guessed values "
    "against the audit log) and changes the audited request headers. Near miss: listing the "
    "enabled audit devices.",
    start=TUESDAY_10, sources=("vault",), anomalies=("audit_disabled",),
)
def vault_audit_tampering(tl: Timeline) -> None:
    tl.vault(tl.at(minutes=1), ADMIN, "read", "sys/audit", "10.0.9.5", kv2=False,
             mount_type="system", response_data={"file/": {"type": "file"}})
    tl.vault(tl.at(minutes=6), ADMIN, "update", "sys/audit-hash/file", "10.0.9.5", kv2=False,
             mount_type="system", request_data={"input": "hunter2"}, response_data={"hash": "x"})
    tl.vault(tl.at(minutes=7), ADMIN, "update", "sys/config/auditing/request-headers/x-forwarded-for",
             "10.0.9.5", kv2=False, mount_type="system", request_data={"hmac": False})


@scenario(
    "vault_audit_gap",
    "A busy Vault audit log (token lookups every 2 s) stops for 4 minutes, then resumes: the "
    "device was blocked or the shipper dropped lines. Near miss: a 45-second lull.",
    start=TUESDAY_10, sources=("vault",), anomalies=("audit_gap",),
)
def vault_audit_gap(tl: Timeline) -> None:
    act.vault_heartbeat(tl, tl.start, tl.at(minutes=10), period=2)
    act.vault_heartbeat(tl, tl.at(minutes=10, seconds=45), tl.at(minutes=20), period=2)
    act.vault_heartbeat(tl, tl.at(minutes=24), tl.at(minutes=30), period=2)


PSP_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "psp-gateway", "namespace": "payments",
                 "annotations": {"secretsight.io/secret-paths": "payments/psp-credentials"}},
    "spec": {"template": {"metadata": {"labels": {"app": "psp-gateway"}}}},
}
SMTP_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "mailer", "namespace": "staging",
                 "annotations": {"secretsight.io/secret-paths": "staging/smtp"}},
    "spec": {"template": {"metadata": {"labels": {"app": "mailer"}}}},
}


@scenario(
    "k8s_rotation_without_deploy",
    "The payments/psp-credentials Secret is replaced; its annotated consumer psp-gateway is not "
    "restarted within 30 minutes and nobody reads it. Near miss: staging/smtp replaced, mailer "
    "restarted and the Secret read by a developer.",
    start=TUESDAY_10, sources=("kubernetes",),
    anomalies=("rotation_without_read", "rotation_without_deploy"),
)
def k8s_rotation_without_deploy(tl: Timeline) -> None:
    ops = K8sUser("ops-bot@example.com", ("platform-deployers", "system:authenticated"))
    act.deployment_update(tl, tl.at(minutes=1), PSP_DEPLOYMENT)
    act.deployment_update(tl, tl.at(minutes=2), SMTP_DEPLOYMENT)
    tl.k8s(tl.at(minutes=5), ops, "update", "secrets", "10.0.0.6", namespace="staging", name="smtp")
    act.rollout_restart(tl, tl.at(minutes=7), "staging", "mailer")
    tl.k8s(tl.at(minutes=8), DEVELOPER, "get", "secrets", "10.0.7.70", namespace="staging",
           name="smtp")
    tl.k8s(tl.at(minutes=15), ops, "update", "secrets", "10.0.0.6", namespace="payments",
           name="psp-credentials")
    tl.k8s(tl.at(minutes=90), DEVELOPER, "get", "secrets", "10.0.7.70", namespace="staging",
           name="redis")


# ------------------------------------------------------------------------------------------
# Peer parity (issue 14): shapes the peers' rule sets detect

@scenario(
    "k8s_token_minting_and_hand_edits",
    "A developer mints a token for the kube-system clusterrole-aggregation-controller service "
    "account (TokenRequest) and patches a Secret in kube-system by hand. Near misses: kubelets "
    "requesting their pods' projected tokens, the controller manager updating a kube-system "
    "token Secret, the developer editing a Secret of their own namespace, a refused (403) "
    "TokenRequest.",
    start=TUESDAY_10, sources=("kubernetes",),
    anomalies=("serviceaccount_token_creation", "human_secret_write"),
)
def k8s_token_minting_and_hand_edits(tl: Timeline) -> None:
    act.k8s_heartbeat(tl, tl.start, tl.at(minutes=30))
    kubelet = K8sUser("system:node:ip-10-0-1-5.ec2.internal",
                      ("system:nodes", "system:authenticated"))
    for i, (ns, sa) in enumerate((("web", "frontend"), ("payments", "psp-gateway"))):
        tl.k8s(tl.at(minutes=1, seconds=10 * i), kubelet, "create", "serviceaccounts", "10.0.1.5",
               namespace=ns, name=sa, subresource="token", code=201,
               user_agent="kubelet/v1.29.2 (linux/amd64) kubernetes/4b8e819")
    kcm = K8sUser("system:kube-controller-manager", ("system:authenticated",))
    tl.k8s(tl.at(minutes=2), kcm, "update", "secrets", "10.0.0.10", namespace="kube-system",
           name="bootstrap-token-abcdef",
           user_agent="kube-controller-manager/v1.29.2 (linux/amd64) kubernetes/4b8e819")
    tl.k8s(tl.at(minutes=5), DEVELOPER, "patch", "secrets", "10.0.7.70", namespace="team-heidi",
           name="app-config")
    tl.k8s(tl.at(minutes=8), DEVELOPER, "create", "serviceaccounts", "10.0.7.70",
           namespace="kube-system", name="generic-garbage-collector", subresource="token",
           code=403)
    tl.k8s(tl.at(minutes=12), DEVELOPER, "create", "serviceaccounts", "10.0.7.70",
           namespace="kube-system", name="clusterrole-aggregation-controller",
           subresource="token", code=201)
    tl.k8s(tl.at(minutes=14), DEVELOPER, "patch", "secrets", "10.0.7.70", namespace="kube-system",
           name="registry-credentials")


AWS_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


@scenario(
    "aws_filters_and_regions",
    "A stolen access key calls BatchGetSecretValue with a name filter (every prod/ secret in one "
    "call), then reads a secret in three regions within 20 minutes. Near misses: the orders-api "
    "role fetching its two secrets by id with BatchGetSecretValue, and reading its replicated "
    "secret in two regions.",
    start=TUESDAY_10, sources=("cloudtrail",), anomalies=("bulk_read", "multi_region_read"),
)
def aws_filters_and_regions(tl: Timeline) -> None:
    for i in range(6):
        tl.cloudtrail(tl.at(minutes=1 + 5 * i), APP_ROLE, "GetSecretValue", "10.0.2.31",
                      secret="prod/orders/db", region=AWS_REGIONS[i % 2])
    tl.cloudtrail(tl.at(minutes=2), APP_ROLE, "BatchGetSecretValue", "10.0.2.31", read_only=True,
                  request={"secretIdList": ["prod/orders/db", "prod/orders/cache"]})
    tl.cloudtrail(tl.at(minutes=10), STOLEN_KEY, "BatchGetSecretValue", "10.0.4.17",
                  read_only=True,
                  request={"filters": [{"key": "name", "values": ["prod/"]}], "maxResults": 20})
    for i, region in enumerate(AWS_REGIONS):
        tl.cloudtrail(tl.at(minutes=12 + 7 * i), STOLEN_KEY, "GetSecretValue", "10.0.4.17",
                      secret="prod/payments/psp", region=region)


SDK_JAVA = "aws-sdk-java/2.25.10 Linux/5.10.219 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS"


@scenario(
    "aws_new_user_agent",
    "The billing-worker role reads its secret with the Java SDK every six hours for 16 days, "
    "then with Boto3 from the same subnet (a tool it never used). Near miss: the orders-api "
    "role upgrades its Go SDK.",
    start=MONDAY - timedelta(days=16), sources=("cloudtrail",), anomalies=("new_user_agent",),
)
def aws_new_user_agent(tl: Timeline) -> None:
    for i in range(16 * 4):
        t = tl.at(hours=6 * i, minutes=3)
        tl.cloudtrail(t, BILLING_WORKER, "GetSecretValue", "10.0.2.40",
                      secret="prod/billing/stripe", user_agent=SDK_JAVA)
        tl.cloudtrail(t + timedelta(minutes=1), APP_ROLE, "GetSecretValue", "10.0.2.31",
                      secret="prod/orders/db")
    end = tl.at(days=16, hours=1)
    tl.cloudtrail(end, APP_ROLE, "GetSecretValue", "10.0.2.31", secret="prod/orders/db",
                  user_agent="aws-sdk-go-v2/1.30.1 os/linux lang/go#1.22.5 api/secretsmanager#1.32.1")
    tl.cloudtrail(end + timedelta(minutes=4), BILLING_WORKER, "GetSecretValue", "10.0.2.41",
                  secret="prod/billing/stripe",
                  user_agent="Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.5.0 "
                             "lang/python#3.11.8")


# Credential churn (issue 14): the same principals renew their credentials as real workloads
# do; the long-memory findings must be those of the run without churn, naming the principal.

CHURN_PAYMENTS = VaultToken("tok_pay_0000", "kubernetes-payments-payment-api",
                            ("default", "payment"), entity="payment-api")
CHURN_ENGINEER = VaultToken("tok_eng_0000", "oidc-bob.former", ("default", "engineering"),
                            entity="bob.former")
CHURN_ETL = AwsPrincipal("reporting-etl", session="etl-run-0000")
CHURN_SA = K8sUser.service_account("payments", "payment-api").rotated(
    "JTI=00000000-0000-4000-8000-000000000000", ("payment-api-7c9d8b6f5-x2k4q", "pod-uid-0"))
CHURN_DESCRIPTION = (
    "Three principals keep to their habits, then each does one long-memory anomaly: a Vault "
    "workload (Kubernetes auth) reads its three paths every 15 minutes for 20 days, then a new "
    "path; an OIDC user reads daily for 10 days, is silent 60 days and comes back; the "
    "reporting-etl role reads its secrets nightly for 21 days, then prod/billing/stripe; a "
    "service account (an operator allowed to read Secrets through the API) reads three Secrets "
    "hourly for 20 days, then payments/psp-signing-key."
)
# The service account reads Secrets through the API by design (an operator), so it is on the
# workload_identity_read allowlist: only the long-memory findings are under test.
CHURN_CONFIG = {"allowlists": {"workload_identity_read": ["system:serviceaccount:payments:*"]}}


def _identity_churn(tl: Timeline, churn: bool) -> None:
    """`churn`: the Vault workload re-authenticates every hour (new accessor, same entity),
    the OIDC user logs in anew each day, every ETL run gets a new STS session, the kubelet
    refreshes the bound token every hour (new JTI) and the pod is replaced once."""
    # Vault workload: 20 days of 15-minute reads, from day 55.
    start = tl.at(days=55)
    token = CHURN_PAYMENTS
    for i, t in enumerate(act.every(start, start + timedelta(days=20), 900, 3, tl)):
        if churn:
            token = CHURN_PAYMENTS.renewed(f"tok_pay_{i // 4:04d}")
        tl.vault_read(t, token, PAYMENT_PATHS[i % 3], f"10.0.1.{70 + i % 2}")
    if churn:
        token = CHURN_PAYMENTS.renewed("tok_pay_last")
    tl.vault_read(start + timedelta(days=20, minutes=7), token,
                  "secret/admin/certificates/signing-key", "10.0.1.70")
    # OIDC user: ten daily reads, 60 days of silence, back on day 70.
    user = CHURN_ENGINEER
    for d in range(10):
        if churn:
            user = CHURN_ENGINEER.renewed(f"tok_eng_{d:04d}")
        tl.vault_read(tl.at(days=d, hours=11), user, "secret/engineering/github-token",
                      "10.0.7.12")
    if churn:
        user = CHURN_ENGINEER.renewed("tok_eng_back")
    tl.vault_read(tl.at(days=70, hours=15), user, "secret/engineering/github-token", "10.0.7.12")
    # AWS: a nightly ETL run (its own STS session with churn) for 21 days, then a new secret.
    etl_secrets = ["prod/reporting/warehouse", "prod/reporting/s3-key", "prod/reporting/looker"]
    etl = CHURN_ETL
    for d in range(21):
        if churn:
            etl = CHURN_ETL.next_session(f"etl-run-{d:04d}")
        for i, secret in enumerate(etl_secrets):
            tl.cloudtrail(tl.at(days=54 + d, hours=2, minutes=i), etl, "GetSecretValue",
                          "10.0.2.90", secret=secret)
    if churn:
        etl = CHURN_ETL.next_session("etl-run-last")
    tl.cloudtrail(tl.at(days=75, hours=15), etl, "GetSecretValue", "10.0.2.90",
                  secret="prod/billing/stripe")
    # Kubernetes: hourly reads of two Secrets by a bound service-account token for 20 days.
    sa = CHURN_SA
    for hour in range(20 * 24):
        if churn:
            pod = ("payment-api-7c9d8b6f5-x2k4q", "pod-uid-0") if hour < 240 else (
                "payment-api-5f7b9c8d4-m8n2p", "pod-uid-1")
            sa = CHURN_SA.rotated(f"JTI=00000000-0000-4000-8000-{hour:012d}", pod)
        for i, name in enumerate(("db", "psp", "redis")):
            tl.k8s(tl.at(days=55, hours=hour, minutes=i), sa, "get", "secrets", "10.0.3.41",
                   namespace="payments", name=name,
                   user_agent="payment-api/v2.3.1 (linux/amd64) kubernetes/$Format")
    if churn:
        sa = CHURN_SA.rotated("JTI=00000000-0000-4000-8000-ffffffffffff",
                              ("payment-api-5f7b9c8d4-m8n2p", "pod-uid-1"))
    tl.k8s(tl.at(days=75, hours=1), sa, "get", "secrets", "10.0.3.41", namespace="payments",
           name="psp-signing-key", user_agent="payment-api/v2.3.1 (linux/amd64) kubernetes/$Format")


@scenario(
    "identity_churn",
    CHURN_DESCRIPTION + " Every credential is renewed as in production (hourly Vault tokens, "
    "a token per OIDC login, an STS session per ETL run, hourly bound-token refresh and a pod "
    "replacement): the findings must equal identity_no_churn's.",
    start=MONDAY - timedelta(days=76), sources=("vault", "cloudtrail", "kubernetes"),
    anomalies=("first_path_access", "dormant_identity"), config=CHURN_CONFIG,
)
def identity_churn(tl: Timeline) -> None:
    _identity_churn(tl, churn=True)


@scenario(
    "identity_no_churn",
    CHURN_DESCRIPTION + " Each principal keeps one credential throughout: the reference for "
    "identity_churn.",
    start=MONDAY - timedelta(days=76), sources=("vault", "cloudtrail", "kubernetes"),
    anomalies=("first_path_access", "dormant_identity"), config=CHURN_CONFIG,
)
def identity_no_churn(tl: Timeline) -> None:
    _identity_churn(tl, churn=False)
