"""The sigma-cli / pySigma plugin (tools/sigma/pipelines/secretsight): pySigma's plugin
autodiscovery finds it, and the real `sigma convert` (sigma-cli, run as a subprocess) converts
the WHOLE rule tree with it, as docs/sigma-cli.md tells users to."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import pytest
from luqum.parser import parser as lucene_parser
from support.logql import parse_logql
from support.sigma_cli import sigma_cli

from secretsight.rules import RULES_DIR, load_rules, rule_files

TOOLS = Path(__file__).resolve().parents[2] / "tools"

# target -> the `-p` pipelines docs/sigma-cli.md gives for it.
PIPELINES: dict[str, list[str]] = {
    "loki": ["secretsight", "secretsight_loki"],
    "esql": ["secretsight", "secretsight_elastic"],
    "lucene": ["secretsight", "secretsight_elastic"],
    "splunk": ["secretsight", "secretsight_splunk"],
}
FULL_TREE_TARGETS = ["loki", "esql", "splunk"]

RULES = load_rules()
# One alerting rule per file, named like it (building blocks precede it in the file).
ALERTING_FILES = {p.stem: p for p in rule_files()}
# Lucene has no correlations in pySigma: the files holding only a plain rule.
PLAIN_FILES = {m.name: m.path for m in RULES.rules if m.emits and m.kind == "detection"}


def test_namespace_packages_stay_namespaces() -> None:
    # An __init__.py here would shadow pySigma's own sigma / sigma.pipelines packages.
    assert not (TOOLS / "sigma" / "__init__.py").exists()
    assert not (TOOLS / "sigma" / "pipelines" / "__init__.py").exists()


def test_autodiscovery_finds_pipelines() -> None:
    from sigma.plugins import InstalledSigmaPlugins

    plugins = InstalledSigmaPlugins.autodiscover()
    for name in ("secretsight", "secretsight_loki", "secretsight_elastic", "secretsight_splunk"):
        assert name in plugins.pipelines
    pipeline = plugins.pipelines["secretsight"]()
    assert pipeline.priority == 10 and "internal_networks" in pipeline.vars
    loki = plugins.pipelines["secretsight_loki"]()
    assert loki.name and loki.priority == 20 and loki.allowed_backends == frozenset({"loki"})


def test_placeholder_pipeline_reads_secretsight_config(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sigma.pipelines.secretsight import pipelines

    config = tmp_path / "c.yml"
    config.write_text("internal_networks: [10.1.0.0/16]\n")
    monkeypatch.setenv("SECRETSIGHT_CONFIG", str(config))
    assert pipelines["secretsight"]().vars["internal_networks"] == ["10.1.0.0/16"]


# ---- the real sigma-cli -------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SECRETSIGHT_CONFIG", None)  # the default config, as in the in-process expectations
    return env


@cache
def sigma_convert(target: str, *inputs: str) -> subprocess.CompletedProcess[str]:
    args = [str(sigma_cli()), "convert", "-t", target]
    for name in PIPELINES[target]:
        args += ["-p", name]
    return subprocess.run([*args, *inputs], capture_output=True, text=True, timeout=300,
                          check=False, env=_env())


def full_tree(target: str) -> subprocess.CompletedProcess[str]:
    return sigma_convert(target, str(RULES_DIR))


def plain_rules_lucene() -> subprocess.CompletedProcess[str]:
    return sigma_convert("lucene", *(str(p) for p in sorted(PLAIN_FILES.values())))


@cache
def expected_queries(target: str, name: str) -> tuple[str, ...]:
    """What the same backend and plugin pipelines make of one rule file, in-process: a file
    holds its alerting rule and every rule it references, so it converts on its own."""
    from sigma.collection import SigmaCollection
    from sigma.plugins import InstalledSigmaPlugins

    plugins = InstalledSigmaPlugins.autodiscover()
    pipeline = plugins.get_pipeline_resolver().resolve(PIPELINES[target], target)
    backend = plugins.backends[target](processing_pipeline=pipeline)
    return tuple(str(q) for q in backend.convert(SigmaCollection.load_ruleset([ALERTING_FILES[name]])))


def _stdout_size(queries: list[str]) -> int:
    # sigma-cli prints a list of queries joined by blank lines, then a newline.
    return sum(len(q) for q in queries) + 2 * (len(queries) - 1)


@pytest.mark.parametrize("target", FULL_TREE_TARGETS)
def test_sigma_convert_whole_tree(target: str) -> None:
    result = full_tree(target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Ignored errors" not in result.stderr
    # Nothing but the alerting rules' queries (each checked by the test below).
    queries = [q for name in ALERTING_FILES for q in expected_queries(target, name)]
    assert len(result.stdout.rstrip("\n")) == _stdout_size(queries)


CASES = [(t, n) for t in FULL_TREE_TARGETS for n in ALERTING_FILES]


@pytest.mark.parametrize(("target", "name"), CASES, ids=[f"{t}/{n}" for t, n in CASES])
def test_sigma_convert_output_has_rule(target: str, name: str) -> None:
    result = full_tree(target)
    assert result.returncode == 0, result.stderr[-3000:]
    queries = expected_queries(target, name)
    assert queries and all(q.strip() for q in queries)
    missing = [q for q in queries if q not in result.stdout]
    assert missing == []


def test_loki_booleans_become_json_strings() -> None:
    # pySigma-backend-loki refuses booleans; secretsight_loki compares `| json`'s true/false.
    (query,) = expected_queries("loki", "cloudtrail_eks_logging_disabled")
    assert query.endswith("| json | aws_logging_disabled=`true`")


@pytest.mark.parametrize("name", sorted(ALERTING_FILES))
def test_esql_queries_read_the_shipper_indices(name: str) -> None:
    # The ES|QL backend's default is `from *`; secretsight_elastic sets the config's indices.
    from secretsight.config import Config

    source = f"from {','.join(Config().targets.elastic.read_from)} metadata "
    queries = expected_queries("esql", name)
    assert queries and all(q.startswith(source) for q in queries)
    assert all(q in full_tree("esql").stdout for q in queries)


def test_loki_array_fields_extracted() -> None:
    # `| json` skips JSON arrays: secretsight_loki extracts user.roles and matches an element.
    (query,) = expected_queries("loki", "vault_root_token")
    assert '| json | json user_roles="user.roles" |' in query
    assert 'user_roles=~`(?i).*"root".*`' in query


# Where sigma-cli gives exactly what `secretsight compile` gives (docs/sigma-cli.md lists the
# rest): every Loki rule (secretsight_loki carries the compiler's Loki fixes as pipeline items),
# and the plain rules on Lucene. A correlation's query is its file's last one. Not Splunk:
# `compile` writes searches for its Splunk app (macros for the index, sourcetypes and lists,
# one result per entity); sigma-cli writes them inline (index from the config).
PARITY = (
    [("loki", "loki", n) for n in sorted(ALERTING_FILES)]
    + [("lucene", "elastic", n) for n in sorted(PLAIN_FILES)]
)


@pytest.mark.parametrize(("target", "compiled_target", "name"), PARITY,
                         ids=[f"{t}/{n}" for t, _, n in PARITY])
def test_sigma_cli_query_equals_compiled(target: str, compiled_target: str, name: str) -> None:
    from support.compiled_rules import compiled

    result = full_tree(target) if target != "lucene" else plain_rules_lucene()
    assert result.returncode == 0, result.stderr[-3000:]
    query = expected_queries(target, name)[-1]
    assert query in result.stdout
    assert [query] == compiled(compiled_target).queries[name]


@pytest.fixture(scope="module")
def logql_results() -> dict[str, dict]:
    queries = sorted({q for n in ALERTING_FILES for q in expected_queries("loki", n)})
    return dict(zip(queries, parse_logql(queries), strict=True))


@pytest.mark.node
@pytest.mark.parametrize("name", sorted(ALERTING_FILES))
def test_sigma_cli_logql_parses(name: str, logql_results: dict[str, dict]) -> None:
    assert full_tree("loki").returncode == 0
    bad = {q: [e["near"] for e in logql_results[q]["errors"]]
           for q in expected_queries("loki", name) if not logql_results[q]["ok"]}
    assert bad == {}


def test_sigma_convert_lucene_plain_rules() -> None:
    result = plain_rules_lucene()
    assert result.returncode == 0, result.stderr[-3000:]
    queries = [q for name in PLAIN_FILES for q in expected_queries("lucene", name)]
    assert len(result.stdout.rstrip("\n")) == _stdout_size(queries)


@pytest.mark.parametrize("name", sorted(PLAIN_FILES))
def test_sigma_cli_lucene_parses(name: str) -> None:
    result = plain_rules_lucene()
    assert result.returncode == 0, result.stderr[-3000:]
    queries = expected_queries("lucene", name)
    assert queries and all(q in result.stdout for q in queries)
    for query in queries:
        assert str(lucene_parser.parse(query)).strip()


def test_lucene_backend_has_no_correlations() -> None:
    """Why docs/sigma-cli.md sends Elastic users of the whole tree to ES|QL: pySigma's Lucene
    backend raises NotImplementedError on correlations, which `--skip-unsupported` does not
    skip. When this fails, Lucene learnt correlations: update the docs."""
    result = full_tree("lucene")
    assert result.returncode != 0
    assert "does not support correlation rules" in result.stderr


# ---- why a correlation shares its file with the rules it references ----------------------------
# sigma-cli lists a directory in file-system order (pathlib glob: unsorted, differs between
# machines) and pySigma 1.5.1 sorts the rules with `referenced_by`, a partial order that
# `sorted` cannot honour. One file per correlation family, in dependency order, makes every
# file order a valid conversion order.

def _correlations_first(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: "correlation:" not in p.read_text("utf-8"))


FILE_ORDERS = {
    "sorted": sorted,
    "reversed": lambda paths: sorted(paths, reverse=True),
    "correlations_first": _correlations_first,
}


def _convert_in_order(paths: list[Path]) -> list[str]:
    from sigma.collection import SigmaCollection
    from sigma.plugins import InstalledSigmaPlugins

    plugins = InstalledSigmaPlugins.autodiscover()
    pipeline = plugins.get_pipeline_resolver().resolve(PIPELINES["splunk"], "splunk")
    backend = plugins.backends["splunk"](processing_pipeline=pipeline)
    # As sigma-cli's load_rules: load (file order kept), merge, resolve references.
    collection = SigmaCollection.merge([SigmaCollection.load_ruleset(paths)])
    return [str(q) for q in backend.convert(collection)]


@pytest.mark.parametrize("order", sorted(FILE_ORDERS))
def test_any_file_order_converts(order: str) -> None:
    paths = FILE_ORDERS[order](rule_files())
    assert len(_convert_in_order(paths)) == len(
        [q for name in ALERTING_FILES for q in expected_queries("splunk", name)])


def test_one_rule_per_file_depends_on_file_order(tmp_path: Path) -> None:
    """The pySigma behaviour the file layout works around: with the building blocks in files
    of their own, a file order putting a correlation first fails. When this test fails,
    pySigma sorts references properly and the layout rule in secretsight.rules may go."""
    import yaml
    from sigma.exceptions import SigmaConversionError

    from secretsight.rules import rule_documents

    paths = []
    for doc in rule_documents(ALERTING_FILES["bulk_read"]):
        path = tmp_path / f"{doc['name']}.yml"
        path.write_text(yaml.safe_dump(doc), "utf-8")
        paths.append(path)
    assert len(paths) == 2  # secret_reads, then bulk_read
    unrelated = ALERTING_FILES["decoy_access"]
    assert len(_convert_in_order([paths[0], unrelated, paths[1]])) == 2
    with pytest.raises(SigmaConversionError, match="Conversion result not available"):
        _convert_in_order([paths[1], unrelated, paths[0]])
