"""The coverage report of the replay harness (Markdown + HTML, in `build/coverage/`):

1. anomaly class x source: which scenarios exercise it and how they fared per normalizer;
2. rule x target: whether each rule was seen firing as expected in a replayed scenario
   (embedded engine), beside the compiler's support status per target (the repo's rules and
   the target forms of the stateful classes, compiled in-process with the default config);
3. scenario x normalizer results.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from secretsight.findings import ANOMALY_CLASSES

SOURCES = ("vault", "cloudtrail", "kubernetes")
_MARK = {"pass": "pass", "fail": "FAIL", "skip": "skip"}


def _compiled_matrix() -> dict[str, Any]:
    """The support matrix of the repo's rules with the default config, compiled in-process
    (a few seconds), so the report always has its target columns."""
    from secretsight.compile import SIEM_TARGETS, compile_targets
    from secretsight.compile.matrix import to_json

    # The rule targets: the alerting target's rows are Prometheus alerts, not these rules.
    data: dict[str, Any] = json.loads(to_json(compile_targets(SIEM_TARGETS).support))
    return data


def _support_matrix() -> tuple[dict[tuple[str, str], str], list[str], str]:
    """Cells of the repo's rules compiled in-process with the default config: the same input
    always gives the same report (a release ships it), whatever lies in build/."""
    path = "compiled in-process with the default config"
    data = _compiled_matrix()
    cells = {}
    for cell in data.get("cells", []):
        status = str(cell.get("status", ""))
        details = cell.get("details") or []
        text = status + (f" ({'; '.join(map(str, details))})" if details else "")
        cells[(str(cell.get("rule")), str(cell.get("target")))] = text
    targets = sorted({t for _, t in cells})
    return cells, targets, path


def _status_text(outcomes: list[Mapping[str, Any]]) -> str:
    return " ".join(f"{o['normalizer']}:{_MARK.get(o['status'], o['status'])}"
                    for o in sorted(outcomes, key=lambda o: o["normalizer"]))


def build_tables(
    outcomes: list[Mapping[str, Any]],
    scenarios: Mapping[str, Any],
    ruleset: Any | None,
) -> dict[str, Any]:
    by_scenario: dict[str, list[Mapping[str, Any]]] = {}
    for o in outcomes:
        by_scenario.setdefault(o["scenario"], []).append(o)

    # 1. anomaly x source. A multi-source scenario counts for the sources whose events
    # produced the anomaly's findings (all its sources for a cross-source finding).
    def exercised(name: str, anomaly: str, source: str) -> bool:
        s = scenarios[name]
        if anomaly not in s.anomalies or source not in s.sources:
            return False
        if len(s.sources) == 1:
            return True
        seen = {src for o in by_scenario.get(name, [])
                for src in (o.get("sources") or {}).get(anomaly, [])}
        return not seen or "multi" in seen or source in seen

    anomaly_rows = []
    for anomaly in ANOMALY_CLASSES:
        row = [anomaly]
        for source in SOURCES:
            names = sorted(
                n for n in scenarios if n in by_scenario and exercised(n, anomaly, source)
            )
            row.append("; ".join(f"{n} [{_status_text(by_scenario[n])}]" for n in names) or "-")
        anomaly_rows.append(row)

    # 2. rule x target
    # A rule is verified by a scenario when, for every normalizer that ran, it fired exactly as
    # expected there (other keys of the scenario may fail without blaming this rule).
    fired_ok: dict[str, list[str]] = {}
    fired_any: dict[str, list[str]] = {}
    verdicts: dict[tuple[str, str], list[bool]] = {}
    for o in outcomes:
        if o["status"] == "skip":
            continue
        for key, count in o.get("expected", {}).items():
            rule = key.split(" / ")[1]
            verdicts.setdefault((rule, o["scenario"]), []).append(
                (o.get("observed") or {}).get(key, 0) == count)
    for (rule, scenario), oks in sorted(verdicts.items()):
        fired_any.setdefault(rule, []).append(scenario)
        if all(oks):
            fired_ok.setdefault(rule, []).append(scenario)
    matrix, targets, matrix_path = _support_matrix()
    rule_rows = []
    metas = list(getattr(ruleset, "rules", []) or [])
    for meta in sorted(metas, key=lambda m: (m.source, m.name)):
        if not meta.emits:
            continue
        if not meta.embedded:
            embedded = "not embedded (target-only; a detector reports it)"
        elif meta.name in fired_any:
            ok = sorted(fired_ok.get(meta.name, []))
            bad = sorted(set(fired_any[meta.name]) - set(ok))
            embedded = "; ".join(
                ([f"verified: {', '.join(ok)}"] if ok else [])
                + ([f"FAILING in: {', '.join(bad)}"] if bad else []))
        else:
            embedded = "no scenario"
        row = [meta.name, meta.anomaly, meta.source, embedded]
        row += [matrix.get((meta.name, t), "not compiled") for t in targets]
        rule_rows.append(row)
    detector_names = sorted({k.split(" / ")[1] for o in outcomes for k in o.get("expected", {})}
                            - {m.name for m in metas})
    for name in detector_names:
        ok = sorted(fired_ok.get(name, []))
        bad = sorted(set(fired_any.get(name, [])) - set(ok))
        status = "; ".join(([f"verified: {', '.join(ok)}"] if ok else [])
                           + ([f"FAILING in: {', '.join(bad)}"] if bad else []))
        # The compiler's target-native forms of stateful classes are named after the class.
        rule_rows.append([name, name, "detector", status]
                         + [matrix.get((name, t), "detector only") for t in targets])

    # 3. scenario x normalizer
    scenario_rows = []
    for name in sorted(by_scenario):
        for o in sorted(by_scenario[name], key=lambda o: o["normalizer"]):
            scenario_rows.append([name, o["normalizer"], _MARK.get(o["status"], o["status"]),
                                  o.get("reason", "")])
    totals = {s: sum(1 for o in outcomes if o["status"] == s) for s in ("pass", "fail", "skip")}
    return {
        "anomaly": (["anomaly class", *SOURCES], anomaly_rows),
        "rules": (["rule", "anomaly", "source", "embedded engine", *targets], rule_rows),
        "scenarios": (["scenario", "normalizer", "result", "differences"], scenario_rows),
        "totals": totals,
        "matrix_path": matrix_path,
    }


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def esc(v: str) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return out


def to_markdown(tables: dict[str, Any]) -> str:
    t = tables["totals"]
    run = t["pass"] + t["fail"] + t["skip"]
    partial = (f" PARTIAL RUN: {run} of {tables['total_cases']} scenario x normalizer cases."
               if tables.get("total_cases") and run < tables["total_cases"] else "")
    lines = ["# SecretSight scenario coverage", "",
             f"Replays: {t['pass']} passed, {t['fail']} failed, {t['skip']} skipped.{partial}", "",
             "## Anomaly class x source", ""]
    lines += _md_table(*tables["anomaly"])
    lines += ["", "## Rule x target", ""]
    lines.append(f"Target columns: {tables['matrix_path']}.")
    lines.append("")
    lines += _md_table(*tables["rules"])
    lines += ["", "## Scenario x normalizer", ""]
    lines += _md_table(*tables["scenarios"])
    return "\n".join(lines) + "\n"


def to_html(tables: dict[str, Any]) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(
                f'<td class="{"bad" if "FAIL" in str(c) else ""}">{html.escape(str(c))}</td>'
                for c in row) + "</tr>"
            for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    t = tables["totals"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>SecretSight coverage</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}"
        ".bad{background:#fdd}</style></head><body>"
        "<h1>SecretSight scenario coverage</h1>"
        f"<p>Replays: {t['pass']} passed, {t['fail']} failed, {t['skip']} skipped.</p>"
        "<h2>Anomaly class x source</h2>" + table(*tables["anomaly"])
        + "<h2>Rule x target</h2>" + table(*tables["rules"])
        + "<h2>Scenario x normalizer</h2>" + table(*tables["scenarios"])
        + "</body></html>\n"
    )


def write_coverage(
    out_dir: Path,
    outcomes: list[Mapping[str, Any]],
    scenarios: Mapping[str, Any],
    ruleset: Any | None,
    *,
    total_cases: int | None = None,
) -> tuple[Path, Path]:
    tables = build_tables(outcomes, scenarios, ruleset)
    tables["total_cases"] = total_cases
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "coverage.md"
    page = out_dir / "coverage.html"
    md.write_text(to_markdown(tables), "utf-8")
    page.write_text(to_html(tables), "utf-8")
    return md, page
