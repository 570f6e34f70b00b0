"""`secretsight watch` killed with SIGKILL mid-stream and restarted: the findings file equals
the one of an uninterrupted run (nothing repeated, nothing missed)."""

from __future__ import annotations

from pathlib import Path

from support.event_streams import detector_stream, write_ndjson
from support.watch_process import killed_then_restarted, reference_run


def test_sigkill_mid_stream_then_restart(tmp_path: Path, state_url: str) -> None:
    src = write_ndjson(tmp_path / "events.ndjson", detector_stream())
    reference = reference_run(src, tmp_path / "reference.ndjson",
                              f"sqlite:///{tmp_path}/reference.db", commit_every=300)
    assert len(reference) > 50, "the stream must produce findings all along"
    # Killed once a few commits have landed but well before the end.
    assert killed_then_restarted(src, tmp_path / "findings.ndjson", state_url, commit_every=300,
                                 kill_after=len(reference) // 4,
                                 total=len(reference)) == reference
