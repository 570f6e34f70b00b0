"""Kibana `threat` mappings from a rule's ATT&CK tags, from the bundled table (no downloads)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from secretsight import yamlio

TABLE = Path(__file__).with_name("attack.yml")
_BASE = "https://attack.mitre.org"


@cache
def table() -> dict[str, Any]:
    return yamlio.load(TABLE.read_text("utf-8"))


def split_tags(tags: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(tactic keys, technique ids, unknown attack.* tags) from `attack.*` Sigma tags."""
    t = table()
    tactics: list[str] = []
    techniques: list[str] = []
    unknown: list[str] = []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace.lower() != "attack":
            continue
        if name[:1].lower() == "t" and name[1:5].isdigit():
            tid = name.upper()
            if tid in t["techniques"]:
                techniques.append(tid)
            else:
                unknown.append(tag)
        elif name[:1].lower() in ("g", "s") and name[1:].isdigit():
            continue  # groups/software: not part of the Kibana threat model
        else:
            key = name.lower().replace("_", "-")
            if key in t["tactics"]:
                tactics.append(key)
            else:
                unknown.append(tag)
    return tactics, techniques, unknown


def threat(tags: list[str]) -> list[dict[str, Any]]:
    """Kibana detection-rule `threat` entries: one per tactic, its techniques nested, the
    sub-techniques under their parent. A technique whose tactics the rule does not tag goes
    under the first tactic the table lists for it."""
    t = table()
    tactics, techniques, _ = split_tags(tags)
    by_tactic: dict[str, list[str]] = {key: [] for key in tactics}
    for tid in techniques:
        allowed = t["techniques"][tid]["tactics"]
        chosen = [key for key in tactics if key in allowed] or [allowed[0]]
        for key in chosen:
            by_tactic.setdefault(key, []).append(tid)
    out: list[dict[str, Any]] = []
    for key in sorted(by_tactic, key=lambda k: t["tactics"][k]["id"]):
        tac = t["tactics"][key]
        parents: dict[str, list[str]] = {}
        for tid in sorted(set(by_tactic[key])):
            parent = tid.split(".")[0]
            parents.setdefault(parent, [])
            if "." in tid:
                parents[parent].append(tid)
        entry: dict[str, Any] = {
            "framework": "MITRE ATT&CK",
            "tactic": {"id": tac["id"], "name": tac["name"],
                       "reference": f"{_BASE}/tactics/{tac['id']}/"},
            "technique": [],
        }
        for parent in sorted(parents):
            tech: dict[str, Any] = {
                "id": parent,
                "name": _technique_name(parent),
                "reference": f"{_BASE}/techniques/{parent}/",
            }
            subs = [
                {"id": sub, "name": _technique_name(sub),
                 "reference": f"{_BASE}/techniques/{sub.replace('.', '/')}/"}
                for sub in parents[parent]
            ]
            if subs:
                tech["subtechnique"] = subs
            entry["technique"].append(tech)
        out.append(entry)
    return out


def _technique_name(tid: str) -> str:
    techniques = table()["techniques"]
    if tid in techniques:
        return techniques[tid]["name"]
    # A sub-technique was tagged without its parent being in the table: the parent's name is
    # still needed for Kibana's nested shape.
    raise KeyError(f"ATT&CK technique {tid} is not in {TABLE.name}")


def alert_annotations(tags: list[str]) -> dict[str, str]:
    """Alert annotations naming the ATT&CK tactics and techniques (Loki ruler, Alertmanager):
    ids, comma-separated, the same mapping as the Kibana `threat`; empty when none is tagged."""
    entries = threat(tags)
    if not entries:
        return {}
    techniques: set[str] = set()
    for entry in entries:
        for tech in entry["technique"]:
            techniques.add(tech["id"])
            techniques.update(sub["id"] for sub in tech.get("subtechnique", []))
    return {"mitre_attack_tactics": ", ".join(e["tactic"]["id"] for e in entries),
            "mitre_attack_techniques": ", ".join(sorted(techniques))}
