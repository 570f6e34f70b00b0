"""From finding to pager on real processes (loopback only): `secretsight watch` reads an audit
stream, Prometheus (Debian's) scrapes its /metrics and evaluates the generated rules,
Alertmanager (the generated config) routes what fires, a webhook receives it.

Test-only changes to the generated files: 1 s evaluation and group waits instead of 1 m / 30 s,
and a webhook under each placeholder receiver."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.alerting_stack import alertmanager, binary, delivered, free_port, process, webhook
from support.prometheus_tools import REPO, alerting_files

from secretsight.alerting.prometheus import RULES_FILE
from secretsight.config import Config

CONFIG = Config()

pytestmark = pytest.mark.prometheus_tools


def _reads(identity: str, paths: Callable[[int], str], n: int, every: float) -> str:
    """`n` normalized Vault reads by `identity`, `every` seconds apart, ending about now."""
    start = datetime.now(UTC) - timedelta(seconds=n * every + 10)
    return "".join(json.dumps({
        "@timestamp": (start + timedelta(seconds=every * i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        + "Z",
        "event": {"dataset": "vault.audit", "action": "read", "outcome": "success",
                  "id": f"req-{identity}-{i}"},
        "secretsight": {"category": "secret"},
        "user": {"id": identity, "name": identity},
        "secret": {"operation": "read", "path": paths(i)},
        "source": {"ip": "10.0.1.47"},
    }) + "\n" for i in range(n))


@contextmanager
def stack(tmp_path: Path, audit: str, *watch_flags: str) -> Iterator[list[dict[str, Any]]]:
    """watch -> Prometheus -> Alertmanager -> webhook over `audit` (NDJSON); yields the list
    the webhook fills. The side-car's findings go to tmp_path/findings.ndjson."""
    prometheus = binary("prometheus")
    events = tmp_path / "audit.ndjson"
    events.write_text(audit, "utf-8")
    rules = yaml.safe_load(alerting_files(CONFIG)[RULES_FILE])
    for group in rules["groups"]:
        group["interval"] = "1s"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules), "utf-8")
    watch_port, prom_port = free_port(), free_port()
    cli = str(Path(sys.executable).with_name("secretsight"))
    with webhook() as (hook, received), alertmanager(tmp_path, CONFIG, hook) as am_url:
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yaml"],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [am_url.removeprefix("http://")]}]}]},
            "scrape_configs": [{"job_name": CONFIG.alerting.prometheus_job,
                                "static_configs": [{"targets": [f"127.0.0.1:{watch_port}"]}]}],
        }), "utf-8")
        watch = [cli, "watch", "--input", str(events), "--listen", f"127.0.0.1:{watch_port}",
                 "--state", f"sqlite:///{tmp_path / 'state.db'}",
                 "--output", str(tmp_path / "findings.ndjson"), *watch_flags]
        prom = [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}"]
        with process(watch, f"http://127.0.0.1:{watch_port}/healthz", "secretsight watch"), \
                process(prom, f"http://127.0.0.1:{prom_port}/-/ready", "prometheus"):
            yield received


# 60 reads of 40 production paths by one token within 2 minutes
HARVEST = _reads("tok_A1b2c3", lambda i: f"secret/production/app-{i % 40}", 60, 2)


@pytest.mark.parametrize("watch_flags", [(), ("--no-rules",)], ids=["rules", "no_rules"])
def test_a_harvest_pages_through_prometheus_and_alertmanager(
        tmp_path: Path, watch_flags: tuple[str, ...]) -> None:
    """The page comes from Prometheus over watch's window gauges, within a scrape and an
    evaluation, whichever way watch runs its rules."""
    findings = tmp_path / "findings.ndjson"
    with stack(tmp_path, HARVEST, *watch_flags) as received:
        paged = delivered(received, "SecretSightBulkRead", 60)
        if watch_flags:
            # The last `stream.lateness` (30 s) of the harvest waits in the reorder buffer
            # until the input has been idle that long on the wall clock (the idle flush).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and '"bulk_read"' not in (
                    findings.read_text("utf-8") if findings.exists() else ""):
                time.sleep(0.5)
    assert paged, "no SecretSightBulkRead notification reached Alertmanager's receivers"
    assert {p["receiver"] for p in paged} == {CONFIG.alerting.receivers.page}
    assert {p["user_id"] for p in paged} == {"tok_A1b2c3"}
    assert paged[0]["team"] == CONFIG.alerting.team
    found = [json.loads(line) for line in findings.read_text("utf-8").splitlines() if line]
    bulk = [f for f in found if f["anomaly"] == "bulk_read"]
    if not watch_flags:
        # With every rule on, bulk_read is the Sigma correlation's: final (and reported) once
        # stream time passes its burst by a timespan (docs/streaming.md), which a stream that
        # stops after the harvest never does: the page above is the prompt signal.
        assert not bulk
        return
    # The detectors-only side-car reports the crossing at once, and its finding links the runbook
    assert bulk and bulk[0]["runbook"] == "docs/runbooks/bulk_read.md"
    assert (REPO / bulk[0]["runbook"]).is_file()


def test_a_renewal_agent_pages_nobody(tmp_path: Path) -> None:
    """12 reads of one path: within the time a harvest takes to page, nothing is routed (a rule
    that fired on any reads would fail here)."""
    renewals = _reads("k8s-backend", lambda i: "secret/production/db", 12, 5)
    with stack(tmp_path, renewals) as received:
        time.sleep(12)
    assert [a["labels"]["alertname"] for m in received for a in m["alerts"]] == []
