"""The distinct paths behind secretsight_identity_window_distinct_paths, kept per identity and
15 s bucket as nothing, one path, or a set (most buckets of an identity hold one read): the
count is the set's whatever the mix of repeats, wildcards, failures and lists in a bucket."""

from __future__ import annotations

import pytest

from secretsight.watch.metrics import Metrics

T0 = 1_699_999_995.0  # a bucket boundary (a multiple of 15 s)


def _read(path: str, outcome: str = "success", op: str = "read") -> dict:
    return {"event": {"dataset": "vault.audit", "outcome": outcome},
            "secret": {"operation": op, "path": path}, "user": {"id": "tok"}}


def test_distinct_paths_per_bucket_count_each_concrete_path_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("secretsight.watch.metrics.MAX_BUCKET_PATHS", 3)
    m = Metrics(clock=lambda: T0 + 60)
    m.observe_many([
        (_read("a"), T0), (_read("a"), T0 + 1),  # one path, twice: stays one
        (_read("*"), T0 + 2), (_read("b", outcome="failure"), T0 + 3),  # neither is a path
        (_read("c", op="list"), T0 + 4),  # a list counts as a read in the window, no path
        (_read("b"), T0 + 5), (_read("c"), T0 + 6), (_read("d"), T0 + 7),  # capped at 3
        (_read("e"), T0 + 20), (_read("e"), T0 + 21),  # the next bucket: one path
        (_read("*"), T0 + 40),  # a bucket of a wildcard only: no path
    ])
    assert m.window_values() == [("tok", 10, 4)]  # reads: all but the failure; paths a b c e
    buckets = sorted(m.window_activity["tok"].items())
    assert [(n, paths) for _, (n, paths) in buckets] == [
        (7, {"a", "b", "c"}), (2, "e"), (1, None)]
    assert m.reads_by_identity["tok"] == 10  # reads (failed ones too), not the list
