"""Each detector: cases that fire and benign cases that must stay silent, against every store.

A case is (config overrides, events, finish `now`, expected findings as (detector, user, key
evidence)). Every case also runs split in two halves with a commit and a fresh `Detectors` on
the same store in between (a restart): the findings must be the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from support.event_builders import at, ev, reads, vault_write

from secretsight.config import Config
from secretsight.detect import Detectors, open_store
from secretsight.findings import ANOMALY_CLASSES


@dataclass
class Case:
    id: str
    events: list[dict[str, Any]]
    expected: list[tuple[str, str | None, Any]]  # (detector, user id, evidence probe)
    config: dict[str, Any] = field(default_factory=dict)
    now: str | None = None
    only: list[str] | None = None
    probe: str = "path"  # which evidence key the third element checks


def baseline(user: str = "u1", paths=("secret/a", "secret/b", "secret/c")) -> list[dict]:
    return [ev(at(i), user=user, path=p) for i, p in enumerate(paths)]


FPA = ["first_path_access"]
FSP = ["first_seen_principal"]
NUA = ["new_user_agent"]
SDK = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22"
SDK_NEW = "aws-cli/2.17.2 Python/3.12.1 Linux/6.8.0 exe/x86_64.ubuntu.24"
FPA_SMALL = {"stateful": {"first_path_access": {"max_paths_per_identity": 3}}}

CASES = [
    # ---- first_path_access
    Case("first_path_access/new_path_after_baseline",
         baseline() + [ev(at(days=15), path="secret/new")],
         [("first_path_access", "u1", "secret/new")], only=FPA),
    Case("first_path_access/silent_during_learning_period",
         baseline() + [ev(at(days=13), path="secret/new")], [], only=FPA),
    Case("first_path_access/silent_below_min_history",
         baseline(paths=("secret/a", "secret/b")) + [ev(at(days=15), path="secret/new")],
         [], only=FPA),
    # Token churn (a new token every hour, one entity): history is the principal's.
    Case("first_path_access/token_churn_keeps_the_baseline",
         [ev(at(i), user="entity-1", path=p, credential__id=f"acc{i}")
          for i, p in enumerate(("secret/a", "secret/b", "secret/c"))]
         + [ev(at(days=15), user="entity-1", path="secret/b", credential__id="acc-new"),
            ev(at(days=15, seconds=5), user="entity-1", path="secret/new",
               credential__id="acc-new")],
         [("first_path_access", "entity-1", "secret/new")], only=FPA),
    Case("first_path_access/known_path_is_silent",
         baseline() + [ev(at(days=15), path="secret/b")], [], only=FPA),
    Case("first_path_access/allowlisted_identity",
         baseline(user="system:serviceaccount:eso:x")
         + [ev(at(days=15), user="system:serviceaccount:eso:x", path="secret/new")], [],
         config={"allowlists": {"first_path_access": ["system:serviceaccount:eso:*"]}}, only=FPA),
    Case("first_path_access/sleeping_identity_keeps_history",
         baseline() + [ev(at(days=200), path="secret/a")], [], only=FPA),
    Case("first_path_access/failed_read_is_not_a_read",
         baseline() + [ev(at(days=15), path="secret/new", outcome="failure")], [], only=FPA),
    Case("first_path_access/kubernetes_403_get_is_not_a_read",
         baseline(user="system:serviceaccount:web:api")
         + [ev(at(days=15), user="system:serviceaccount:web:api", action="get",
               path="kube-system/admin-token", dataset="kubernetes.audit", outcome="failure",
               kubernetes__response_code=403, kubernetes__stage="ResponseComplete")],
         [], only=FPA),
    Case("first_path_access/kubernetes_controller_is_exempt",
         baseline(user="system:serviceaccount:kube-system:persistent-volume-binder")
         + [ev(at(days=15), user="system:serviceaccount:kube-system:persistent-volume-binder",
               action="get", path="storage/ceph-admin", dataset="kubernetes.audit")],
         [], only=FPA),
    Case("first_path_access/namespace_list_is_not_a_path",
         baseline() + [ev(at(days=15), op="list", path="prod/*", dataset="kubernetes.audit")],
         [], only=FPA),
    Case("first_path_access/vault_request_entry_not_counted_twice",
         baseline() + [ev(at(days=15), path="secret/new", vault__entry_type="request"),
                       ev(at(days=15), path="secret/new", vault__entry_type="response")],
         [("first_path_access", "u1", "secret/new")], only=FPA),
    Case("first_path_access/lru_evicted_path_looks_new",
         baseline() + [ev(at(5), path="secret/d"), ev(at(days=15), path="secret/a")],
         [("first_path_access", "u1", "secret/a")], config=FPA_SMALL, only=FPA),
    # LRU to within an hour (state.LAST_SEEN_STEP): a read refreshes a path's place once its
    # last_seen is an hour old, the order a restart reloads.
    Case("first_path_access/lru_keeps_recently_seen",
         baseline() + [ev(at(minutes=61), path="secret/a"),
                       ev(at(minutes=62), path="secret/d"), ev(at(days=15), path="secret/a")],
         [], config=FPA_SMALL, only=FPA),
    Case("first_path_access/lru_order_refreshed_hourly",
         baseline() + [ev(at(4), path="secret/a"), ev(at(5), path="secret/d"),
                       ev(at(days=15), path="secret/a")],
         [("first_path_access", "u1", "secret/a")], config=FPA_SMALL, only=FPA),
    # ---- first_seen_principal (judges once it has watched 14 days)
    Case("first_seen_principal/new_principal_after_history",
         baseline(user="app") + [ev(at(days=15), user="intruder", path="secret/a")],
         [("first_seen_principal", "intruder", "intruder")], only=FSP, probe="user"),
    Case("first_seen_principal/silent_while_learning",
         baseline(user="app") + [ev(at(days=13), user="newcomer", path="secret/a")], [],
         only=FSP),
    Case("first_seen_principal/known_reader_is_silent",
         baseline(user="app") + [ev(at(days=15), user="app", path="secret/new")], [], only=FSP),
    Case("first_seen_principal/principal_seen_but_never_read_fires_on_first_read",
         baseline(user="app") + [ev(at(days=1), user="ci", op="list", path="secret/*"),
                                 ev(at(days=15), user="ci", path="secret/a")],
         [("first_seen_principal", "ci", "ci")], only=FSP, probe="user"),
    Case("first_seen_principal/denied_read_is_not_a_read",
         baseline(user="app") + [ev(at(days=15), user="intruder", path="secret/a",
                                    outcome="failure")], [], only=FSP),
    Case("first_seen_principal/new_token_of_a_known_entity_is_silent",
         baseline(user="entity-1") + [ev(at(days=15), user="entity-1", path="secret/a",
                                         credential__id="acc-renewed")], [], only=FSP),
    Case("first_seen_principal/kubernetes_controller_is_exempt",
         baseline(user="app") + [ev(at(days=15), dataset="kubernetes.audit", action="get",
                                    user="system:serviceaccount:kube-system:expand-controller",
                                    path="storage/ceph")], [], only=FSP),
    Case("first_seen_principal/allowlisted",
         baseline(user="app") + [ev(at(days=15), user="ci-runner", path="secret/a")], [],
         config={"allowlists": {"first_seen_principal": ["ci-*"]}}, only=FSP),
    # ---- new_user_agent (families: versions dropped; baseline: principal seen 14 days)
    Case("new_user_agent/sdk_principal_switches_to_curl",
         [ev(at(0), user="app", path="secret/a", user_agent__original=SDK),
          ev(at(days=15), user="app", path="secret/a", user_agent__original="curl/8.5.0")],
         [("new_user_agent", "app", "curl")], only=NUA, probe="family"),
    Case("new_user_agent/sdk_upgrade_is_silent",
         [ev(at(0), user="app", path="secret/a", user_agent__original=SDK),
          ev(at(days=15), user="app", path="secret/a", user_agent__original=SDK_NEW)],
         [], only=NUA),
    Case("new_user_agent/silent_during_learning_period",
         [ev(at(0), user="app", path="secret/a", user_agent__original=SDK),
          ev(at(days=13), user="app", path="secret/a", user_agent__original="curl/8.5.0")],
         [], only=NUA),
    Case("new_user_agent/other_principal_agent_is_not_known",
         [ev(at(0), user="ops", path="secret/a", user_agent__original="curl/8.5.0"),
          ev(at(1), user="app", path="secret/a", user_agent__original=SDK),
          ev(at(days=15), user="app", path="secret/a", user_agent__original="curl/8.4.0")],
         [("new_user_agent", "app", "curl")], only=NUA, probe="family"),
    Case("new_user_agent/no_agent_logged_is_ignored",
         [ev(at(0), user="app", path="secret/a", user_agent__original=SDK),
          ev(at(days=15), user="app", path="secret/a")], [], only=NUA),
    Case("new_user_agent/denied_read_is_ignored",
         [ev(at(0), user="app", path="secret/a", user_agent__original=SDK),
          ev(at(days=15), user="app", path="secret/a", outcome="failure",
             user_agent__original="curl/8.5.0")], [], only=NUA),
    Case("new_user_agent/fires_once_per_new_family",
         [ev(at(0), user="app", path="secret/a", user_agent__original=SDK),
          ev(at(days=15), user="app", path="secret/a", user_agent__original="curl/8.5.0"),
          ev(at(days=16), user="app", path="secret/b", user_agent__original="curl/8.6.0")],
         [("new_user_agent", "app", "curl")], only=NUA, probe="family"),
    Case("new_user_agent/evicted_family_looks_new",
         [ev(at(0), user="app", path="secret/a", user_agent__original=SDK),
          ev(at(minutes=61), user="app", path="secret/a", user_agent__original="kubectl/v1.29"),
          ev(at(days=15), user="app", path="secret/a", user_agent__original=SDK)],
         [("new_user_agent", "app", "aws-cli python linux exe")],
         config={"stateful": {"max_user_agents_per_principal": 1}}, only=NUA, probe="family"),
    # ---- dormant_identity
    Case("dormant_identity/active_after_31_days",
         [ev(at(0)), ev(at(days=31), op="list", path="secret/*")],
         [("dormant_identity", "u1", "u1")], only=["dormant_identity"], probe="user"),
    Case("dormant_identity/29_days_is_not_dormant",
         [ev(at(0)), ev(at(days=29))], [], only=["dormant_identity"]),
    Case("dormant_identity/other_identity_does_not_count",
         [ev(at(0), user="a"), ev(at(days=31), user="b")], [], only=["dormant_identity"]),
    # ---- rotation_without_read
    Case("rotation_without_read/no_read_window_closed_by_stream_time",
         [ev(at(-60), user="app", path="secret/stripe"), vault_write(at(0), "secret/stripe"), ev(at(minutes=45), user="x", path="secret/other")],
         [("rotation_without_read", "writer", "secret/stripe")], only=["rotation_without_read"]),
    Case("rotation_without_read/read_by_consumer_is_silent",
         [ev(at(-60), user="app", path="secret/stripe"), vault_write(at(0), "secret/stripe"), ev(at(minutes=10), user="app", path="secret/stripe"),
          ev(at(minutes=45), user="x", path="secret/other")], [], only=["rotation_without_read"]),
    Case("rotation_without_read/read_only_by_writer_fires",
         [ev(at(-60), user="app", path="secret/stripe"), vault_write(at(0), "secret/stripe"),
          ev(at(minutes=1), user="writer", path="secret/stripe")],
         [("rotation_without_read", "writer", "secret/stripe")], only=["rotation_without_read"]),
    Case("rotation_without_read/read_after_window_fires",
         [ev(at(-60), user="app", path="secret/stripe"), vault_write(at(0), "secret/stripe"), ev(at(minutes=40), user="app", path="secret/stripe")],
         [("rotation_without_read", "writer", "secret/stripe")], only=["rotation_without_read"]),
    Case("rotation_without_read/finish_closes_pending",
         [ev(at(-60), user="app", path="secret/stripe"), vault_write(at(0), "secret/stripe")],
         [("rotation_without_read", "writer", "secret/stripe")], only=["rotation_without_read"]),
    Case("rotation_without_read/finish_now_keeps_open_window",
         [ev(at(-60), user="app", path="secret/stripe"), vault_write(at(0), "secret/stripe")], [], now=at(minutes=10),
         only=["rotation_without_read"]),
    Case("rotation_without_read/aws_put_then_get_is_silent",
         [ev(at(0), user="arn:aws:iam::1:role/rot", op="write", action="PutSecretValue",
             path="prod/db", dataset="aws.cloudtrail"),
          ev(at(60), user="arn:aws:iam::1:role/app", action="GetSecretValue", path="prod/db",
             dataset="aws.cloudtrail")], [], only=["rotation_without_read"]),
    Case("rotation_without_read/aws_rotation_succeeded_unread",
         [ev(at(-60), user="arn:aws:iam::1:role/app", action="GetSecretValue", path="prod/db",
             dataset="aws.cloudtrail"),
          ev(at(0), user="secretsmanager.amazonaws.com", op="rotate", action="RotationSucceeded",
             path="prod/db", dataset="aws.cloudtrail")],
         [("rotation_without_read", "secretsmanager.amazonaws.com", "prod/db")],
         only=["rotation_without_read"]),
    Case("rotation_without_read/k8s_secret_patch_unread",
         [ev(at(-60), user="system:serviceaccount:prod:ingress", action="get", path="prod/tls",
             dataset="kubernetes.audit", kubernetes__stage="ResponseComplete"),
          ev(at(0), user="kubectl-user", op="write", action="patch", path="prod/tls",
             dataset="kubernetes.audit", kubernetes__stage="ResponseComplete")],
         [("rotation_without_read", "kubectl-user", "prod/tls")], only=["rotation_without_read"]),
    # Consumers: a principal other than the writer read the path before the write.
    Case("rotation_without_read/path_nobody_else_reads_is_silent",
         [ev(at(-60), user="writer", path="secret/ci/cache"), vault_write(at(0), "secret/ci/cache"),
          ev(at(minutes=45), user="x", path="secret/other")], [], only=["rotation_without_read"]),
    Case("rotation_without_read/new_secret_without_readers_is_silent",
         [vault_write(at(0), "secret/new-app/api-key")], [], only=["rotation_without_read"]),
    Case("rotation_without_read/workload_rewriting_own_path_all_day_is_silent",
         [e for k in range(24) for e in (vault_write(at(minutes=60 * k), "secret/agent/lease"),
                                          ev(at(minutes=60 * k + 1), user="writer",
                                             path="secret/agent/lease"))],
         [], only=["rotation_without_read"]),
    Case("rotation_without_read/consumer_known_from_a_day_ago",
         [ev(at(0), user="app", path="secret/stripe"),
          vault_write(at(days=1), "secret/stripe")],
         [("rotation_without_read", "writer", "secret/stripe")], only=["rotation_without_read"]),
    Case("rotation_without_read/finding_names_the_writer_credential",
         [ev(at(-60), user="app", path="secret/stripe"),
          {**vault_write(at(0), "secret/stripe"), "credential": {"id": "hmac-sha256:w1"}}],
         [("rotation_without_read", "writer", "writer via hmac-sha256:w1")],
         only=["rotation_without_read"], probe="who"),
    # The consumer re-authenticated (a new token) between its reads: still the same principal.
    Case("rotation_without_read/consumer_with_a_renewed_token_satisfies",
         [ev(at(-60), user="entity-app", path="secret/stripe", credential__id="acc-1"),
          vault_write(at(0), "secret/stripe"),
          ev(at(minutes=5), user="entity-app", path="secret/stripe", credential__id="acc-2"),
          ev(at(minutes=45), user="x", path="secret/other")], [],
         only=["rotation_without_read"]),
    Case("rotation_without_read/evidence_names_the_consumers",
         [ev(at(-60), user="app", path="secret/stripe"), vault_write(at(0), "secret/stripe")],
         [("rotation_without_read", "writer", ["app"])], only=["rotation_without_read"],
         probe="consumers"),
    Case("rotation_without_read/non_kv_vault_write_ignored",
         [ev(at(0), user="w", op="write", action="update", path="database/config/pg",
             vault__mount_type="database")], [], only=["rotation_without_read"]),
    Case("rotation_without_read/failed_write_ignored",
         [ev(at(0), user="w", op="write", action="update", path="secret/x", outcome="failure")],
         [], only=["rotation_without_read"]),
    # ---- rotation_without_deploy
    Case("rotation_without_deploy/configured_consumer_no_rollout",
         [vault_write(at(0), "secret/stripe")],
         [("rotation_without_deploy", "writer", "secret/stripe")],
         config={"secret_consumers": {"secret/stripe": ["payments/api"]}},
         only=["rotation_without_deploy"]),
    Case("rotation_without_deploy/restart_rollout_is_silent",
         [vault_write(at(0), "secret/stripe"),
          ev(at(minutes=5), user="argo", category="workload", op=None, action="patch",
             dataset="kubernetes.audit", kubernetes__object_ref__resource="deployments",
             kubernetes__object_ref__namespace="payments", kubernetes__object_ref__name="api",
             kubernetes__restarted_at="2026-01-05T10:05:00Z")], [],
         config={"secret_consumers": {"secret/stripe": ["payments/api"]}},
         only=["rotation_without_deploy"]),
    Case("rotation_without_deploy/replicaset_creation_is_a_rollout",
         [vault_write(at(0), "secret/stripe"),
          ev(at(minutes=5), user="system:serviceaccount:kube-system:deployment-controller",
             category="workload", op=None, action="create", dataset="kubernetes.audit",
             kubernetes__object_ref__resource="replicasets",
             kubernetes__object_ref__namespace="payments",
             kubernetes__object_ref__name="api-7d9f8c6b5")], [],
         config={"secret_consumers": {"secret/stripe": ["payments/api"]}},
         only=["rotation_without_deploy"]),
    Case("rotation_without_deploy/rollout_of_other_workload_fires",
         [vault_write(at(0), "secret/stripe"),
          ev(at(minutes=5), user="argo", category="workload", op=None, action="patch",
             dataset="kubernetes.audit", kubernetes__object_ref__resource="deployments",
             kubernetes__object_ref__namespace="web", kubernetes__object_ref__name="front",
             kubernetes__restarted_at="2026-01-05T10:05:00Z")],
         [("rotation_without_deploy", "writer", "secret/stripe")],
         config={"secret_consumers": {"secret/stripe": ["payments/api"]}},
         only=["rotation_without_deploy"]),
    Case("rotation_without_deploy/consumer_learned_from_annotation",
         [ev(at(0), user="argo", category="workload", op=None, action="patch",
             dataset="kubernetes.audit", kubernetes__object_ref__resource="deployments",
             kubernetes__object_ref__namespace="payments", kubernetes__object_ref__name="api",
             kubernetes__secret_paths=["secret/stripe"]),
          vault_write(at(minutes=10), "secret/stripe")],
         [("rotation_without_deploy", "writer", "secret/stripe")],
         only=["rotation_without_deploy"]),
    Case("rotation_without_deploy/unknown_consumers_never_fire",
         [vault_write(at(0), "secret/stripe")], [], only=["rotation_without_deploy"]),
    # ---- audit_gap
    # (601 reads a second: 10 minutes without a gap, the default audit_gap_baseline)
    Case("audit_gap/continuous_source_goes_silent",
         reads(0, 601) + reads(800, 5),
         [("audit_gap", None, "silence")], only=["audit_gap"], probe="reason"),
    Case("audit_gap/nine_minutes_is_not_yet_continuous",
         reads(0, 540) + reads(800, 5), [], only=["audit_gap"]),
    Case("audit_gap/bursty_source_is_not_continuous",
         # ESO-style: 12 reads 0.3 s apart every 300 s for 14 hours (the median gap is 0.3 s)
         [e for k in range(170) for e in reads(300 * k, 12, every=0.3)], [],
         only=["audit_gap"]),
    Case("audit_gap/a_gap_restarts_the_run",
         reads(0, 601) + reads(700, 300) + reads(1100, 5),
         [("audit_gap", None, "silence")], only=["audit_gap"], probe="reason"),
    Case("audit_gap/sparse_source_is_silent",
         reads(0, 30, every=300) + reads(30 * 300 + 7200, 2), [], only=["audit_gap"]),
    Case("audit_gap/short_history_is_not_continuous",
         reads(0, 5) + reads(500, 2), [], only=["audit_gap"]),
    Case("audit_gap/audit_device_disabled_fires_at_once",
         reads(0, 30) + [ev(at(31), user="root-acc", category="audit", op=None, action="delete",
                            vault__path="sys/audit/file")] + reads(600, 3),
         [("audit_gap", "root-acc", "audit_device_disabled")], only=["audit_gap"],
         probe="reason"),
    Case("audit_gap/vault_disable_logged_as_request_entry_only",
         [ev(at(31), user="root-acc", category="audit", op=None, action="delete",
             outcome="unknown", vault__path="sys/audit/file", vault__entry_type="request")],
         [("audit_gap", "root-acc", "audit_device_disabled")], only=["audit_gap"],
         probe="reason"),
    Case("audit_gap/disable_request_and_response_report_once",
         [{**e, "event": {**e["event"], "id": "req-1"}} for e in (
             ev(at(31), user="root-acc", category="audit", op=None, action="delete",
                outcome="unknown", vault__path="sys/audit/file", vault__entry_type="request"),
             ev(at(31.2), user="root-acc", category="audit", op=None, action="delete",
                vault__path="sys/audit/file", vault__entry_type="response"))],
         [("audit_gap", "root-acc", "audit_device_disabled")], only=["audit_gap"],
         probe="reason"),
    Case("audit_gap/failed_disable_does_not_fire",
         [ev(at(31), user="dev", category="audit", op=None, action="delete", outcome="failure",
             vault__path="sys/audit/file", vault__entry_type="response")],
         [], only=["audit_gap"]),
    Case("audit_gap/trailing_silence_at_finish_now",
         reads(0, 601), [("audit_gap", None, "silence")], now=at(800), only=["audit_gap"],
         probe="reason"),
    Case("audit_gap/sources_are_separate",
         reads(0, 30) + reads(0, 30, every=10, dataset="aws.cloudtrail") + reads(40, 3),
         [], only=["audit_gap"]),
    # ---- admin_off_hours (default window: Mon-Fri 06:00-22:00 UTC)
    Case("admin_off_hours/vault_root_on_sunday_night",
         [ev("2026-01-11T03:14:00Z", user="adm", roles=["root"])],
         [("admin_off_hours", "adm", "adm")], only=["admin_off_hours"], probe="user"),
    Case("admin_off_hours/vault_root_in_business_hours",
         [ev("2026-01-12T10:00:00Z", user="adm", roles=["root"])], [], only=["admin_off_hours"]),
    Case("admin_off_hours/end_time_is_exclusive",
         [ev("2026-01-12T22:00:00Z", user="adm", roles=["admin"])],
         [("admin_off_hours", "adm", "adm")], only=["admin_off_hours"], probe="user"),
    Case("admin_off_hours/one_finding_per_burst",
         [ev(f"2026-01-11T03:{m:02d}:00Z", user="adm", roles=["root"]) for m in (1, 20, 50)]
         + [ev("2026-01-11T06:30:00Z", user="adm", roles=["root"])],
         [("admin_off_hours", "adm", "adm"), ("admin_off_hours", "adm", "adm")],
         only=["admin_off_hours"], probe="user"),
    Case("admin_off_hours/non_admin_is_silent",
         [ev("2026-01-11T03:14:00Z", user="dev", roles=["default"])], [], only=["admin_off_hours"]),
    Case("admin_off_hours/aws_root",
         [ev("2026-01-10T23:00:00Z", user="arn:aws:iam::1:root", dataset="aws.cloudtrail",
             action="GetSecretValue", path="x", aws__identity_type="Root")],
         [("admin_off_hours", "arn:aws:iam::1:root", "arn:aws:iam::1:root")],
         only=["admin_off_hours"], probe="user"),
    Case("admin_off_hours/k8s_system_masters",
         [ev("2026-01-10T23:00:00Z", user="kubernetes-admin", dataset="kubernetes.audit",
             action="get", path="kube-system/x", roles=["system:authenticated",
                                                          "system:masters"])],
         [("admin_off_hours", "kubernetes-admin", "kubernetes-admin")],
         only=["admin_off_hours"], probe="user"),
    Case("admin_off_hours/configured_arn_glob",
         [ev("2026-01-10T23:00:00Z", user="arn:aws:sts::1:assumed-role/Admin/bob",
             dataset="aws.cloudtrail", action="GetSecretValue", path="x",
             aws__session_issuer_arn="arn:aws:iam::1:role/Admin")],
         [("admin_off_hours", "arn:aws:sts::1:assumed-role/Admin/bob",
           "arn:aws:sts::1:assumed-role/Admin/bob")],
         config={"admin_identities": {"aws_arns": ["arn:aws:iam::*:role/Admin"]}},
         only=["admin_off_hours"], probe="user"),
    # ---- bulk_read (threshold: more than 50 in 5 min)
    Case("bulk_read/51_reads_fire_once", reads(0, 51), [("bulk_read", "u1", 51)],
         only=["bulk_read"], probe="reads"),
    Case("bulk_read/50_reads_are_silent", reads(0, 50), [], only=["bulk_read"]),
    Case("bulk_read/long_burst_is_one_finding", reads(0, 200), [("bulk_read", "u1", 51)],
         only=["bulk_read"], probe="reads"),
    Case("bulk_read/two_bursts_two_findings", reads(0, 60) + reads(3600, 60),
         [("bulk_read", "u1", 51), ("bulk_read", "u1", 51)], only=["bulk_read"], probe="reads"),
    Case("bulk_read/slow_reader_is_silent", reads(0, 200, every=10), [], only=["bulk_read"]),
    Case("bulk_read/denied_reads_are_not_reads",
         [ev(at(i), path=f"secret/p{i}", outcome="failure") for i in range(60)], [],
         only=["bulk_read"]),
    Case("bulk_read/kubernetes_controller_is_exempt",
         [ev(at(i), user="system:serviceaccount:kube-system:generic-garbage-collector",
             op="list", action="watch", path="*", dataset="kubernetes.audit") for i in range(60)],
         [], only=["bulk_read"]),
    Case("bulk_read/controller_list_replaced_by_user",
         [ev(at(i), user="system:serviceaccount:monitoring:kube-state-metrics", op="list",
             action="list", path="*", dataset="kubernetes.audit") for i in range(51)],
         [("bulk_read", "system:serviceaccount:monitoring:kube-state-metrics", 51)],
         config={"system_identities": {"kubernetes": []}}, only=["bulk_read"], probe="reads"),
    # Findings name the principal (user.id, user.name) and the credential that acted.
    Case("bulk_read/finding_names_principal_and_credential",
         [ev(at(i), user="6f0c1e2a-entity-app", path=f"secret/p{i}",
             user__name="kubernetes-payments", credential__id="hmac-sha256:acc9")
          for i in range(51)],
         [("bulk_read", "6f0c1e2a-entity-app",
           "kubernetes-payments (6f0c1e2a-entity-app) via hmac-sha256:acc9")],
         only=["bulk_read"], probe="who"),
    # Tokens renewed every few seconds: the principal's reads still add up.
    Case("bulk_read/token_churn_keeps_counting_the_principal",
         [ev(at(i), user="6f0c1e2a-entity-app", path=f"secret/p{i}",
             credential__id=f"hmac-sha256:acc{i // 10}") for i in range(51)],
         [("bulk_read", "6f0c1e2a-entity-app", 51)], only=["bulk_read"], probe="reads"),
    # ---- path_diversity
    Case("path_diversity/vault_30_reads_10_paths",
         reads(0, 30, paths=[f"secret/p{i}" for i in range(10)]),
         [("path_diversity", "u1", 10)], only=["path_diversity"], probe="distinct_paths"),
    Case("path_diversity/vault_9_paths_is_silent",
         reads(0, 60, paths=[f"secret/p{i}" for i in range(9)]), [], only=["path_diversity"]),
    Case("path_diversity/secretsmanager_21_distinct",
         reads(0, 21, dataset="aws.cloudtrail", paths=[f"prod/s{i}" for i in range(21)]),
         [("path_diversity", "u1", 21)], only=["path_diversity"], probe="distinct_paths"),
    Case("path_diversity/token_churn_keeps_one_window",
         [ev(at(i * 5), user="entity-1", path=f"secret/p{i % 10}", credential__id=f"acc{i // 3}")
          for i in range(30)],
         [("path_diversity", "entity-1", 10)], only=["path_diversity"], probe="distinct_paths"),
    Case("path_diversity/kubernetes_403_gets_are_not_reads",
         [ev(at(i), user="system:serviceaccount:web:frontend", action="get",
             path=f"ns{i % 12}/creds", dataset="kubernetes.audit", outcome="failure",
             kubernetes__response_code=403, kubernetes__stage="ResponseComplete")
          for i in range(40)], [], only=["path_diversity"]),
    Case("path_diversity/secretsmanager_20_distinct_is_silent",
         reads(0, 40, dataset="aws.cloudtrail", paths=[f"prod/s{i}" for i in range(20)]), [],
         only=["path_diversity"]),
]


def _probe(f, probe: str) -> Any:
    if probe == "user":
        return f.user_id
    if probe == "who":  # principal and credential, readable name first
        return f.who()
    return f.evidence.get(probe)


def _run(url: str | None, case: Case, split: bool) -> list[tuple[str, str | None, Any]]:
    config = Config.model_validate(case.config)
    store = open_store(url)
    try:
        det = Detectors(config, store, only=case.only)
        out = []
        half = len(case.events) // 2 if split else len(case.events)
        for e in case.events[:half]:
            out.extend(det.process(e))
        if split:
            assert det.commit({"input": half}) == []
            det = Detectors(config, store, only=case.only)  # a restart on the same store
            assert det.state_offsets()["input"] == half
            for e in case.events[half:]:
                out.extend(det.process(e))
        out.extend(det.finish(case.now))
        assert det.commit() == []
        for f in out:
            assert f.anomaly in ANOMALY_CLASSES and f.rule == f"detector/{f.rule_name}"
        return [(f.rule_name, f.user_id, _probe(f, case.probe)) for f in out]
    finally:
        store.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_detector_case(store_url: str | None, case: Case) -> None:
    assert _run(store_url, case, split=False) == case.expected


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_detector_case_survives_restart(durable_store_url: str, case: Case) -> None:
    """Commit half-way, restart on the same store: same findings, none repeated or lost."""
    assert _run(durable_store_url, case, split=True) == case.expected
