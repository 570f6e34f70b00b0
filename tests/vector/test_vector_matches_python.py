"""The VRL programs agree with the Python normalizer (secretsight.normalize) beyond the goldens:
on every real-format sample line and on deterministic mutations of every golden line (fields
deleted, nulled, emptied, or given another JSON type), item for item."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from support.vrl_programs import load_golden

from secretsight.normalize.line import normalize_line

SAMPLE_DIRS = {"vault": "vault", "cloudtrail": "cloudtrail", "k8s": "kubernetes"}
REPLACEMENTS: tuple[Any, ...] = (None, "", 42, 1.5, True, "x", [], ["x"], [1], {}, {"x": 1})
MUTATIONS_PER_CASE = 80


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    out = []
    if depth > 4:
        return out
    if isinstance(value, dict):
        for key, child in value.items():
            out.append((*prefix, key))
            out.extend(_paths(child, (*prefix, key), depth + 1))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            out.append((*prefix, i))
            out.extend(_paths(child, (*prefix, i), depth + 1))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> Any:
    doc = json.loads(json.dumps(doc))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return doc


def _mutations(raw: bytes, seed: str) -> list[str]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    rng = random.Random(seed)
    paths = _paths(doc)
    out = []
    for _ in range(MUTATIONS_PER_CASE if paths else 0):
        path = rng.choice(paths)
        delete = rng.random() < 0.25
        out.append(json.dumps(_mutate(doc, path, rng.choice(REPLACEMENTS), delete)))
    return out


def _differences(programs, source: str, lines: list[str]) -> list[str]:
    diffs = []
    for line in dict.fromkeys(lines):  # unique, in order
        python = normalize_line(line.encode("utf-8"), source)
        vrl = programs.items(source, line)
        if vrl != python:
            diffs.append(f"{line}\n    python: {python}\n    vrl:    {vrl}")
    return diffs


# Only a raw line that is a JSON object has fields to mutate.
CASES = [c for c in load_golden() if _mutations(c.raw, c.name)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_mutations_of_golden_line_match_python(programs, case):
    lines = _mutations(case.raw, case.name)
    diffs = _differences(programs, case.source, lines)
    assert not diffs, f"{len(diffs)} of {len(lines)} mutations differ:\n" + "\n".join(diffs)


@pytest.mark.samples
def test_sample_lines_match_python(programs, samples_dir):
    diffs = []
    for folder, source in SAMPLE_DIRS.items():
        for path in sorted((samples_dir / folder).iterdir()):
            lines = [ln for ln in path.read_text("utf-8").splitlines() if ln.strip()]
            diffs += [f"{path.name}: {d}" for d in _differences(programs, source, lines)]
            diffs += [f"{path.name} (auto): {d}" for d in _differences(programs, "auto", lines)]
    assert not diffs, f"{len(diffs)} sample lines differ:\n" + "\n".join(diffs)


TIMESTAMPS = (
    "2026-05-09T10:00:00Z",
    "2026-05-09T10:00:00.1Z",
    "2026-05-09T10:00:00.123456789Z",
    "2026-05-09T10:00:00.1234567891Z",
    "2026-05-09T10:00:00.Z",
    "2026-05-09t10:00:00z",
    "2026-05-09T10:00:00+02:00",
    "2026-05-09T01:00:00.5-05:30",
    "2026-05-09T10:00:00-00:00",
    "2026-05-09T23:59:59.999+00:00",
    "2026-12-31T23:30:00-01:00",
    "2024-02-29T12:00:00Z",
    "2025-02-29T12:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-05-09T24:00:00Z",
    "2026-05-09T10:60:00Z",
    "2026-05-09T10:00:60Z",
    "2026-05-09T10:00:00+24:00",
    "2026-05-09T10:00:00+02:60",
    "2026-05-09 10:00:00",
    "2026-05-09 10:00:00.000000000",
    "2026-05-09 10:00:00+01:00",
    "2026-05-09 10:00:00Z",
    "2026-05-09",
    "10:00:00",
    "2026-05-09T10:00:00",
    "2026-05-09T10:00Z",
    " 2026-05-09T10:00:00Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:30:00-01:00",
    "2026-5-9T10:00:00Z",
)
TIME_FIELD = {
    "vault/kv2_read": ("time",),
    "cloudtrail/get_secret_value_by_name_iam_user": ("eventTime",),
    "kubernetes/get_secret": ("requestReceivedTimestamp",),
    "kubernetes/gke_proto_payload_secret_get_denied": ("timestamp",),
}


@pytest.mark.parametrize("name", sorted(TIME_FIELD))
def test_timestamp_variants_match_python(programs, name):
    (case,) = [c for c in CASES if c.name == name]
    doc = json.loads(case.raw)
    lines = [json.dumps(_mutate(doc, TIME_FIELD[name], ts, False)) for ts in TIMESTAMPS]
    diffs = _differences(programs, case.source, lines)
    assert not diffs, f"{len(diffs)} of {len(lines)} timestamps differ:\n" + "\n".join(diffs)


ADDRESSES = (
    "10.0.1.47",
    "10.0.1.47:8200",
    "10.0.1.47:65535",
    "10.0.1.47:65536",
    "10.0.1.47:",
    "010.0.1.47",
    "256.1.1.1",
    "2001:db8::1",
    "[2001:db8::1]",
    "[2001:db8::1]:8200",
    "[2001:db8::1]:x",
    "[10.0.1.47]:80",
    "2001:db8::1:8200",
    "fe80::1%eth0",
    "::ffff:10.0.1.47",
    "host.internal",
    "host.internal:80",
    "",
    " 10.0.1.47",
    "10.0.1.47:080",
    "[::1]:0",
    "1.2.3.4:١٢",
)
VARIANTS: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {
    "vault/kv2_read": (("request", "remote_address"), ADDRESSES),
    "cloudtrail/get_secret_value_by_name_iam_user": (
        ("sourceIPAddress",),
        ADDRESSES + ("lambda.amazonaws.com", "AWS Internal"),
    ),
    "kubernetes/get_secret": (
        ("sourceIPs",),
        tuple([a] for a in ADDRESSES) + (["1.1.1.1", ""], ["", "1.1.1.1"]),
    ),
    "vault/kv2_nested_mount_point": (
        ("request", "path"),
        (
            "team/kv/data/app/db",
            "team/kv/metadata/",
            "team/kv/data",
            "team/kv/",
            "team/kvx/data/a",
            "team/data/a",
            "data/a",
            "data",
            "secret/data/a/rotate-root",
            "db/rotate-root",
            "db/rotate-rootx",
            "db/x/rotate-role/y",
            "sys",
            "sys/audit",
            "sys/audit-hashx",
            "sys/policies",
            "auth/x",
            "identity",
        ),
    ),
    "vault/database_rotate_root": (
        ("request", "operation"),
        ("update", "create", "read", "delete", "list", "patch", "help", "rollback"),
    ),
    "vault/kv2_undelete": (
        ("request", "operation"),
        ("update", "create", "read", "delete", "list", "patch", "help"),
    ),
    "vault/kv2_destroy": (
        ("request", "operation"),
        ("update", "create", "read", "delete", "list", "patch", "help"),
    ),
    "vault/kv2_metadata_read_is_describe": (
        ("request", "operation"),
        ("update", "read", "delete", "list", "help"),
    ),
    "cloudtrail/get_secret_value_full_arn_assumed_role": (
        ("requestParameters", "secretId"),
        (
            "prod/db",
            "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-a1B2c3",
            "arn:aws:secretsmanager:us-east-1:1:secret:prod/db",
            "arn:aws-cn:secretsmanager:cn-north-1:1:secret:x-abcdef",
            "arn:aws:secretsmanager:us-east-1:1:secret:-abcdef",
            "arn:aws:secretsmanager:us-east-1:1:secret:a-abcdef",
            "arn:aws:secretsmanager:us-east-1:1:secret:",
            "arn:aws:s3:::bucket",
            "arn:aws:secretsmanager:us-east-1:1:secret:a:b-abcdef",
            "arn:aws:secretsmanager:r:1:other:x",
        ),
    ),
    "cloudtrail/identity_assumed_role_without_arn_uses_issuer_name": (
        ("userIdentity", "arn"),
        (
            "arn:aws:sts::1:assumed-role/r/s",
            "arn:aws:sts::1:assumed-role/r/",
            "arn:aws:sts::1:federated-user/bob/x",
            "arn:aws:sts::1:federated-user/",
            "arn:aws:iam::1:user/alice",
            "",
        ),
    ),
    "cloudtrail/put_resource_policy_public_aws_star_string": (
        ("requestParameters", "resourcePolicy"),
        (
            '{"Statement":{"Effect":"Allow","Principal":"*"}}',
            '{"Statement":[{"Effect":"Deny","Principal":"*"}]}',
            '{"Statement":"x"}',
            "not json",
            "",
            {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["a", "*"]}}]},
            {"Statement": [5, {"Effect": "Allow", "Principal": {"Service": "*"}}]},
            {"Version": "1"},
            7,
            ["x"],
        ),
    ),
    "cloudtrail/eks_update_cluster_config_disables_logging": (
        ("requestParameters", "logging"),
        (
            {},
            {"clusterLogging": []},
            {"clusterLogging": [{"enabled": True}]},
            {"clusterLogging": [{"enabled": "false"}]},
            {"clusterLogging": [5]},
            {"clusterLogging": {}},
            "x",
            None,
        ),
    ),
    "kubernetes/gke_proto_payload_apps_patch": (
        ("protoPayload", "methodName"),
        (
            "io.k8s.apps.v1.deployments.patch",
            "io.k8s.core.v1.secrets.get",
            "io.k8s.core.v1.pods.exec.create",
            "io.k8s.get",
            "io.k8s.",
            "io.x.get",
            "k8s.io.get",
            "io.k8s.core.v1.secrets",
            "a.b",
            "",
        ),
    ),
    "kubernetes/gke_proto_payload_secret_get_denied": (
        ("protoPayload", "resourceName"),
        (
            "core/v1/namespaces/production/secrets/tls-cert",
            "core/v1/secrets",
            "core/v1/secrets/x",
            "core/v1/namespaces//secrets/",
            "core/v1/namespaces/a/pods/b",
            "readyz",
            "",
            "core/v1/namespaces/a/secrets/b/c",
        ),
    ),
    "kubernetes/deployment_patch_restarted_at_and_secret_paths": (
        ("requestObject", "metadata", "annotations", "secretsight.io/secret-paths"),
        ("a, b", " ,\t, ", "", 5, "x\u00a0,y", ["a"], None),
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_field_variants_match_python(programs, name):
    (case,) = [c for c in CASES if c.name == name]
    path, values = VARIANTS[name]
    doc = json.loads(case.raw)
    lines = [json.dumps(_mutate(doc, path, v, False)) for v in values]
    diffs = _differences(programs, case.source, lines)
    assert not diffs, f"{len(diffs)} of {len(lines)} variants differ:\n" + "\n".join(diffs)
