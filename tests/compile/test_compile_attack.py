"""The bundled ATT&CK table covers every tag the rules use, and Kibana `threat` entries are
built from it without any network access."""

from __future__ import annotations

import re
import socket

import pytest

from secretsight.compile import attack, compile_target
from secretsight.rules import load_rules

TAGS = sorted({f"{t.namespace}.{t.name}" for r in load_rules().collection.rules for t in r.tags
               if t.namespace == "attack"})


@pytest.mark.parametrize("tag", TAGS)
def test_rule_attack_tag_in_bundled_table(tag: str) -> None:
    _, _, unknown = attack.split_tags([tag])
    assert not unknown, f"add {tag} to {attack.TABLE}"


def test_table_ids_and_parents() -> None:
    table = attack.table()
    for key, tac in table["tactics"].items():
        assert re.fullmatch(r"TA\d{4}", tac["id"]) and tac["name"], key
    for tid, tech in table["techniques"].items():
        assert re.fullmatch(r"T\d{4}(\.\d{3})?", tid)
        assert tech["tactics"] and set(tech["tactics"]) <= set(table["tactics"]), tid
        if "." in tid:
            assert tid.split(".")[0] in table["techniques"], f"{tid} needs its parent"


def test_threat_groups_techniques_under_tagged_tactic() -> None:
    threat = attack.threat(["attack.credential-access", "attack.defense-evasion",
                            "attack.t1078", "attack.t1552"])
    by_tactic = {t["tactic"]["id"]: [x["id"] for x in t["technique"]] for t in threat}
    # T1078 belongs to defense-evasion (tagged), T1552 to credential-access.
    assert by_tactic == {"TA0005": ["T1078"], "TA0006": ["T1552"]}


def test_unknown_tag_reported() -> None:
    assert attack.split_tags(["attack.t9999", "attack.not-a-tactic", "cve.2024-1"])[2] == [
        "attack.t9999", "attack.not-a-tactic"]


def test_elastic_compile_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compile tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    out = compile_target("elastic")
    assert not out.errors, [str(e) for e in out.errors]
    assert "elastic/secretsight-rules.ndjson" in out.files
