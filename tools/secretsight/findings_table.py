"""Findings for people: the table and the one-line summary `secretsight scan` prints."""

from __future__ import annotations

from collections import Counter

from secretsight.findings import SEVERITIES, Finding


def _short(ts: str) -> str:
    return ts.replace("T", " ").rstrip("Z").split(".")[0] if ts else "?"


def _window(f: Finding) -> str:
    start, end = _short(f.start), _short(f.end)
    if start == end:
        return start
    if start[:10] == end[:10]:
        return f"{start} -> {end[11:]}"
    return f"{start} -> {end}"


def _evidence_line(f: Finding) -> str:
    ev = f.evidence or {}
    parts = []
    if "events" in ev:
        parts.append(f"{ev['events']} events")
    if ev.get("distinct_paths"):
        sample = ", ".join(ev.get("paths", [])[:3])
        more = "" if ev["distinct_paths"] <= 3 else ", ..."
        parts.append(f"{ev['distinct_paths']} paths ({sample}{more})")
    if ev.get("source_ips"):
        parts.append("IPs " + ", ".join(ev["source_ips"][:4]))
    if not parts:  # detector evidence: show its scalar facts
        for key, value in ev.items():
            if isinstance(value, (str, int, float)) and len(parts) < 4:
                parts.append(f"{key}={value}")
            elif isinstance(value, list) and value and len(parts) < 4:
                parts.append(f"{key}={', '.join(map(str, value[:3]))}")
    return "; ".join(parts)


def format_table(findings: list[Finding]) -> str:
    rows = [("SEVERITY", "ANOMALY", "RULE", "IDENTITY", "WINDOW (UTC)")]
    for f in findings:
        rows.append((f.severity, f.anomaly, f.rule_name or f.rule, f.who(), _window(f)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for i, row in enumerate(rows):
        out.append("  ".join(c.ljust(widths[j]) for j, c in enumerate(row[:4])) + "  " + row[4])
        if i == 0:
            continue
        f = findings[i - 1]
        pad = " " * (widths[0] + 2)
        out.append(f"{pad}{f.title} [{f.rule}]")
        line = _evidence_line(f)
        if line:
            out.append(f"{pad}{line}")
    return "\n".join(out)


def summary_line(events: int, duplicates: int, findings: list[Finding], dead: int,
                 skipped: int) -> str:
    counts = Counter(f.severity for f in findings)
    by_sev = ", ".join(f"{s} {counts[s]}" for s in reversed(SEVERITIES) if counts[s])
    return (
        f"{events} events ({duplicates} duplicates, {skipped} skipped), "
        f"{len(findings)} findings" + (f" ({by_sev})" if by_sev else "")
        + f", {dead} dead letters"
    )
