"""The user configuration: one YAML file for thresholds, windows, allowlists, internal ranges,
admin identities, decoy paths and maintenance windows.

The Sigma compiler applies it at compile time (pipeline placeholders and thresholds); the
stateful detectors read it at run time. Rules are never edited to tune them.
`config/secretsight.example.yml` documents every key with its default; a test keeps the two equal.
A config file need only hold what it changes: it is merged over the defaults at every depth
(`thresholds: {bulk_read: {count: 5}}` keeps the default window); a list replaces the default
list whole.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from secretsight import yamlio
from secretsight.alerting.settings import AlertingSettings
from secretsight.config_targets import Targets
from secretsight.errors import SecretSightError
from secretsight.limits import Limits

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """'90s', '5m', '24h', '14d' or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 60s, 5m, 24h, 14d)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def format_duration(td: timedelta) -> str:
    """timedelta -> the largest whole unit: 300s -> '5m' (the form Sigma timespans use)."""
    seconds = int(td.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountWindow(_Strict):
    count: int = Field(gt=0)
    window: Duration


class PathDiversity(_Strict):
    distinct_paths: int = Field(gt=0)
    reads: int = Field(gt=0)
    window: Duration


class DistinctWindow(_Strict):
    distinct: int = Field(gt=0)
    window: Duration


class Thresholds(_Strict):
    # "more than 50 read/list operations by one identity in 5 minutes": fires at count + 1.
    bulk_read: CountWindow = CountWindow(count=50, window=timedelta(minutes=5))
    # Vault and Kubernetes: at least 10 distinct paths and at least 30 reads in 5 minutes.
    path_diversity: PathDiversity = PathDiversity(
        distinct_paths=10, reads=30, window=timedelta(minutes=5)
    )
    # Secrets Manager: more than 20 distinct secrets in 10 minutes.
    path_diversity_secretsmanager: DistinctWindow = DistinctWindow(
        distinct=20, window=timedelta(minutes=10)
    )
    dual_source_ip_window: Duration = timedelta(minutes=60)
    # at least 10 denied secret operations by one identity in 15 minutes
    denied_burst: CountWindow = CountWindow(count=10, window=timedelta(minutes=15))
    # one source IP reading from at least 2 stores in 10 minutes
    cross_store_harvest: CountWindow = CountWindow(count=2, window=timedelta(minutes=10))
    # Enumeration needs breadth (docs/rules.md, namespace_enumeration): Vault, at least 5
    # distinct prefixes listed by one principal in 10 minutes; Kubernetes, lists in at least 3
    # namespaces in 10 minutes.
    namespace_enumeration: DistinctWindow = DistinctWindow(
        distinct=5, window=timedelta(minutes=10))
    kubernetes_namespace_sweep: DistinctWindow = DistinctWindow(
        distinct=3, window=timedelta(minutes=10))
    # Secrets Manager: ListSecrets and reads of at least 3 distinct secrets within 10 minutes.
    list_then_read: DistinctWindow = DistinctWindow(distinct=3, window=timedelta(minutes=10))
    # Secrets Manager: one principal reads secrets in at least 3 regions within an hour.
    multi_region_read: DistinctWindow = DistinctWindow(distinct=3, window=timedelta(hours=1))
    long_ttl_token_max: Duration = timedelta(hours=24)


class FirstPathAccess(_Strict):
    # An identity is judged only once it has been seen for `learning_period` and has read at
    # least `min_history` distinct paths; before that every path is new and nothing fires.
    learning_period: Duration = timedelta(days=14)
    min_history: int = Field(default=3, ge=1)
    # Bounded memory: at most this many known paths per identity; past it the oldest-seen path
    # is forgotten (LRU), so one identity cannot grow the store without bound.
    max_paths_per_identity: int = Field(default=10_000, ge=1)


class Stateful(_Strict):
    first_path_access: FirstPathAccess = FirstPathAccess()
    dormant_after: Duration = timedelta(days=30)
    rotation_read_window: Duration = timedelta(minutes=30)
    rotation_deploy_window: Duration = timedelta(minutes=30)
    audit_gap_max_silence: Duration = timedelta(seconds=60)
    # A source counts as continuous (so its silence is news) once it has emitted for this long
    # with no gap over audit_gap_max_silence; any longer gap starts the count again.
    audit_gap_baseline: Duration = timedelta(minutes=10)
    # first_seen_principal: a principal's first secret read ever, judged once the detector has
    # watched this long (before that every principal is new); targets: the history window.
    first_seen_principal_history: Duration = timedelta(days=14)
    # new_user_agent: a principal seen for this long reads with a user-agent family it never
    # used; at most max_user_agents_per_principal families kept (least recently seen dropped).
    user_agent_learning_period: Duration = timedelta(days=14)
    max_user_agents_per_principal: int = Field(default=50, ge=1)


class TimeRange(_Strict):
    start_time: str
    end_time: str

    @field_validator("start_time", "end_time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d|24:00", v):
            raise ValueError(f"not HH:MM: {v!r}")
        return v


class TimeInterval(_Strict):
    """One Alertmanager `time_intervals` entry: every given constraint must hold."""

    times: list[TimeRange] = []
    weekdays: list[str] = []  # "monday:friday", "saturday"
    days_of_month: list[str] = []  # "1:5", "-1"
    months: list[str] = []  # "january:march", "12"
    years: list[str] = []


class MaintenanceWindow(_Strict):
    name: str
    time_intervals: list[TimeInterval]
    location: str = "UTC"  # IANA time zone, as Alertmanager's `location`


class AdminIdentities(_Strict):
    vault_policies: list[str] = ["root", "admin"]
    aws_arns: list[str] = []  # exact ARNs or glob patterns; AWS Root is always admin
    kubernetes_groups: list[str] = ["system:masters"]


# Kubernetes control-plane controllers (kube-controller-manager's per-controller service
# accounts, --use-service-account-credentials) and add-ons whose secret traffic is routine: the
# namespace controller lists and deletes every secret of a namespace being deleted, the garbage
# collector and resource-quota controller list/watch all secrets, kube-state-metrics lists them
# for metrics, the token controllers create and clean up token secrets.
_KUBERNETES_CONTROLLERS = [
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:apiserver",
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:kube-system:resourcequota-controller",
    "system:serviceaccount:kube-system:service-account-controller",
    "system:serviceaccount:kube-system:token-cleaner",
    "system:serviceaccount:kube-system:bootstrap-signer",
    "system:serviceaccount:kube-system:legacy-service-account-token-cleaner",
    "system:serviceaccount:kube-system:persistent-volume-binder",
    "system:serviceaccount:kube-system:expand-controller",
    "system:serviceaccount:*:kube-state-metrics",
]


class SystemIdentities(_Strict):
    """Platform identities whose secret traffic is routine, exempt from every read, list,
    enumeration, deletion and first-seen class (a user replaces the list; `[]` exempts none).
    Kept apart from `allowlists` so one list covers every class."""

    kubernetes: list[str] = _KUBERNETES_CONTROLLERS


class Allowlists(_Strict):
    """Identities (`user.id` or `user.name`; `*` globs allowed) exempt from one anomaly class."""

    bulk_read: list[str] = []
    path_diversity: list[str] = []
    namespace_enumeration: list[str] = []
    workload_identity_read: list[str] = [
        "system:serviceaccount:external-secrets:*",
        "system:serviceaccount:kube-system:*",
    ]
    secret_destruction: list[str] = ["system:serviceaccount:kube-system:*"]
    suspicious_user_agent: list[str] = []
    denied_burst: list[str] = []
    first_path_access: list[str] = []
    serviceaccount_token_creation: list[str] = []
    human_secret_write: list[str] = []
    multi_region_read: list[str] = []
    first_seen_principal: list[str] = []
    new_user_agent: list[str] = []


_DEFAULT_INTERNAL = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
]

_DEFAULT_AGENTS = [
    "curl/*",
    "Wget/*",
    "python-requests/*",
    "python-urllib*",
    "Go-http-client/*",
    "*kali*",
    "*trufflehog*",
    "*gitleaks*",
    "*nuclei*",
    "*sqlmap*",
    "*nmap*",
    "*masscan*",
    "*pacu*",
    "*peirates*",
    "*kubehound*",
]


class StreamSettings(_Strict):
    """`watch` streaming (tools/secretsight/stream): how late an event may arrive (out of
    order) and still be evaluated exactly as `scan` would; and, for `scan` and `watch`, how
    close findings of one (anomaly, user.id) must be to form one incident (incidents.py)."""

    lateness: Duration = timedelta(seconds=30)
    incident_window: Duration = timedelta(hours=1)


class Config(_Strict):
    internal_networks: list[str] = _DEFAULT_INTERNAL
    thresholds: Thresholds = Thresholds()
    stateful: Stateful = Stateful()
    admin_identities: AdminIdentities = AdminIdentities()
    # Admin actions inside any of these windows are expected; outside them they fire.
    maintenance_windows: list[MaintenanceWindow] = [
        MaintenanceWindow(
            name="business_hours",
            time_intervals=[
                TimeInterval(
                    weekdays=["monday:friday"],
                    times=[TimeRange(start_time="06:00", end_time="22:00")],
                )
            ],
        )
    ]
    allowlists: Allowlists = Allowlists()
    stream: StreamSettings = StreamSettings()
    system_identities: SystemIdentities = SystemIdentities()
    decoy_paths: list[str] = []  # secret.path globs that no one should ever touch
    suspicious_user_agents: list[str] = _DEFAULT_AGENTS  # case-insensitive globs
    # Listing secrets there is enumeration; a human writing them is human_secret_write.
    sensitive_namespaces: list[str] = ["kube-system", "kube-public", "default"]
    # secret.path -> workloads ("namespace/deployment") that consume it, for
    # rotation_without_deploy where Deployments do not carry the secretsight.io annotation.
    secret_consumers: dict[str, list[str]] = {}
    limits: Limits = Limits()  # time sanity, HTTP ingest, findings spool (limits.py)
    alerting: AlertingSettings = AlertingSettings()  # Alertmanager, Prometheus, runbooks
    targets: Targets = Targets()  # SIEM names, schedules, severities (config_targets.py)

    @field_validator("internal_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for cidr in v:
            ipaddress.ip_network(cidr, strict=False)
        return v

    def internal(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.internal_networks]


def merge_over_defaults(data: dict[str, Any], base: Config | None = None) -> dict[str, Any]:
    """`data` (a parsed config file) deep-merged over `base` (default: the built-in defaults):
    a mapping merges key by key at every depth, anything else (a list, a scalar) replaces."""

    def merge(under: Any, over: Any) -> Any:
        if isinstance(under, dict) and isinstance(over, dict):
            return {**under, **{k: merge(under.get(k), v) for k, v in over.items()}}
        return over

    defaults = (base or Config()).model_dump()
    merged: dict[str, Any] = merge(defaults, data)
    return merged


def config_from_mapping(data: dict[str, Any], *, file: str | None = None) -> Config:
    """A Config from a partial mapping (merged over the defaults); SecretSightError naming every
    invalid key."""
    try:
        return Config.model_validate(merge_over_defaults(data))
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SecretSightError(f"invalid config: {details}", file=file) from exc


def load_config(path: str | Path | None) -> Config:
    """The defaults, overridden by what the YAML file at `path` sets (see merge_over_defaults)."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        data = yamlio.load(path.read_text("utf-8")) or {}
    except OSError as exc:
        raise SecretSightError(f"cannot read config: {exc}", file=str(path)) from exc
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise SecretSightError(
            f"config is not valid YAML: {exc}", file=str(path),
            line=line + 1 if line is not None else None,
        ) from exc
    if not isinstance(data, dict):
        raise SecretSightError("config must be a mapping at the top level", file=str(path))
    return config_from_mapping(data, file=str(path))
