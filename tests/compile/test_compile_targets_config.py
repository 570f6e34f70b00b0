"""The config's `targets:` section names every index, data stream, label, sourcetype and app
the compiled outputs use: renaming them changes every output that depends on them and nothing
else, and no default name is left behind."""

from __future__ import annotations

import re
from functools import cache

import pytest

from secretsight.compile import TARGETS, TargetOutput, compile_targets
from secretsight.config import Config
from secretsight.config_targets import ElasticTarget, LokiTarget, SplunkTarget, Targets

# New names that occur nowhere else, so mapping them back is exact.
RENAMED = Targets(
    loki=LokiTarget(dataset_label="zzdslabel"),
    elastic=ElasticTarget(data_streams=["logs-*-zzstream"], indices=["zzplainindex"],
                          template_name="zztemplate"),
    splunk=SplunkTarget(app="zzapp", index="zzindex", sourcetype_prefix="zzsourcetype:",
                        shared_sourcetype="zzshared:type",
                        alert_index="zzalertindex", alert_sourcetype="zzalert:type"),
)
BACK = {
    "zzdslabel": "dataset", "logs-*-zzstream": "logs-*-secretsight",
    "zzplainindex": "secretsight-events", "zztemplate": "secretsight", "zzapp": "secretsight",
    "zzindex": "secretsight", "zzsourcetype:": "secretsight:", "zzalertindex": "secretsight_alerts",
    "zzalert:type": "secretsight:alert", "zzshared:type": "secretsight:event",
}
# Where a default name is used as a name (not as a part of another word).
DEFAULT_USES = {
    "loki dataset label": re.compile(r'\{dataset=|^\s+dataset: ', re.MULTILINE),
    "elastic data stream": re.compile(re.escape("logs-*-secretsight")),
    "elastic index": re.compile(r"secretsight-events"),
    "splunk index": re.compile(r'index="secretsight"'),
    "splunk sourcetype": re.compile(r"secretsight:(vault|aws|kubernetes|event)"),
    "splunk alert index": re.compile(r"secretsight_alerts"),
    "splunk alert sourcetype": re.compile(r"secretsight:alert"),
}


@cache
def outputs(renamed: bool) -> TargetOutput:
    config = Config(targets=RENAMED) if renamed else Config()
    return compile_targets(TARGETS, config=config)


def _back(text: str) -> str:
    for new, old in sorted(BACK.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(new, old)
    return text


def test_renaming_changes_only_the_names() -> None:
    default, renamed = outputs(False), outputs(True)
    assert not renamed.errors, [str(e) for e in renamed.errors]
    mapped = {_back(path): _back(text) for path, text in renamed.files.items()}
    assert sorted(mapped) == sorted(default.files)
    different = [p for p in default.files if mapped[p] != default.files[p]]
    assert different == []


@pytest.mark.parametrize("use", sorted(DEFAULT_USES))
def test_no_default_name_is_left(use: str) -> None:
    pattern = DEFAULT_USES[use]
    assert any(pattern.search(t) for t in outputs(False).files.values()), \
        f"the default outputs never use the {use}: the check cannot fail"
    left = sorted(p for p, t in outputs(True).files.items() if pattern.search(t))
    assert left == []


def test_renamed_outputs_differ_where_names_are_used() -> None:
    changed = {p for p, t in outputs(True).files.items()
               if _back(p) not in outputs(False).files or outputs(False).files[_back(p)] != t}
    # every target has outputs that name where the events are
    for prefix in ("loki/", "elastic/", "splunk/"):
        assert any(_back(p).startswith(prefix) for p in changed), prefix


def test_a_partial_targets_section_renames_only_what_it_names(tmp_path) -> None:  # noqa: ANN001
    """`targets:` merges over the defaults like every section: one key changes one name."""
    from secretsight.config import load_config

    path = tmp_path / "config.yml"
    path.write_text("targets:\n  splunk:\n    index: acme_secrets\n", "utf-8")
    config = load_config(path)
    assert config.targets.splunk.index == "acme_secrets"
    assert config.targets.splunk.alert_index == Config().targets.splunk.alert_index
    assert config.targets.elastic == Config().targets.elastic


@pytest.mark.parametrize(("section", "values", "message"), [
    ("elastic", {"severity": {"low": "low"}}, "needs exactly the levels"),
    ("elastic", {"severity": {**ElasticTarget().severity, "high": "severe"}}, "Kibana severities"),
    ("splunk", {"alert_severity": {**SplunkTarget().alert_severity, "critical": 7}}, "1..6"),
    ("loki", {"ruler_interval": "0m"}, "String should match pattern"),
    ("splunk", {"index": "two words"}, "String should match pattern"),
], ids=["levels", "kibana_severity", "splunk_severity", "zero_interval", "index_name"])
def test_targets_section_refuses(section: str, values: dict, message: str) -> None:
    from pydantic import ValidationError

    model = {"elastic": ElasticTarget, "splunk": SplunkTarget, "loki": LokiTarget}[section]
    with pytest.raises(ValidationError, match=message):
        model(**values)
