"""`secretsight compile`: Sigma rules -> Loki (LogQL + ruler file), Elastic (Kibana detection
rules NDJSON + index templates) and Splunk (an app), with a support matrix saying, per rule and
target, whether it compiled as is, with a workaround for a known backend defect, or not at all;
and the `alerting` target (Alertmanager, Prometheus rules, Grafana: secretsight.alerting).

One module per target (`loki`, `elastic`, `splunk`, with `elastic_template` and `splunk_app`
for what installs around the rules), found through `registry`; `transformations` holds the
pySigma transformations the targets and the sigma-cli pipelines share (it imports no target);
`pipelines` builds each target's pipeline from sigma/pipelines/ and the config's `targets:`;
`defects` lists the backend defects and their workarounds; `matrix` renders the support
matrix; `stateful` adds target-native rules for the stateful anomaly classes (absence, first
seen) that Sigma cannot express. Names of indexes, labels and sourcetypes come from the
config's `targets:` section. Outputs are deterministic: sorted, no timestamps, so two compiles
of one commit are byte-identical.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from secretsight.compile import matrix
from secretsight.compile.model import Support, TargetOutput
from secretsight.compile.registry import (
    ALERTING,
    CONFIG_REGISTRY,
    SIEM_TARGETS,
    TARGETS,
    builder,
    compiler,
)
from secretsight.config import Config
from secretsight.errors import SecretSightError

__all__ = ["ALERTING", "SIEM_TARGETS", "TARGETS", "Support", "TargetOutput", "compile_target",
           "compile_targets", "write_output"]


def compile_target(
    target: str,
    *,
    config: Config | None = None,
    paths: Iterable[str | Path] | None = None,
) -> TargetOutput:
    """Compile the rules under `paths` (default: the repo's sigma/rules) for `target`.

    Rule errors are collected in `TargetOutput.errors` (file and line), never raised one by one;
    a rule a target cannot express correctly is `unsupported` in the matrix, with the reason.
    """
    from secretsight.rules import load_rules  # pySigma is heavy: import on use

    if target not in TARGETS:
        raise SecretSightError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
    config = config or Config()
    if target in CONFIG_REGISTRY:
        return builder(target)(config)
    # A fresh rule set per target: pySigma pipelines and backends modify the rules in place.
    ruleset = load_rules(list(paths) if paths is not None else None, config)
    out = TargetOutput(target=target)
    out.errors.extend(ruleset.errors)
    compiler(target)(ruleset, config, out)
    # Conversion errors are the target's own: say which target (load errors are shared).
    shared = len(ruleset.errors)
    out.errors[shared:] = [
        SecretSightError(f"{target}: {e.message}", file=e.file, line=e.line)
        for e in out.errors[shared:]
    ]
    out.support.sort(key=lambda c: (c.rule, c.target))
    return out


def compile_targets(
    targets: Iterable[str],
    *,
    config: Config | None = None,
    paths: Iterable[str | Path] | None = None,
) -> TargetOutput:
    """Compile several targets into one output: each target's files under its own directory,
    one support matrix (`support-matrix.md` + `.json`) covering them all."""
    paths = list(paths) if paths is not None else None
    merged = TargetOutput(target="+".join(sorted(set(targets))))
    seen_errors: set[str] = set()
    for target in sorted(set(targets)):
        out = compile_target(target, config=config, paths=paths)
        merged.files.update(out.files)
        merged.support.extend(out.support)
        for name, queries in out.queries.items():
            merged.queries[f"{target}:{name}"] = queries
        for err in out.errors:
            # Rule-load errors repeat per target; report each once.
            if str(err) not in seen_errors:
                seen_errors.add(str(err))
                merged.errors.append(err)
    merged.support.sort(key=lambda c: (c.rule, c.target))
    merged.files[matrix.MATRIX_MD] = matrix.to_markdown(merged.support)
    merged.files[matrix.MATRIX_JSON] = matrix.to_json(merged.support)
    return merged


def write_output(output: TargetOutput, out_dir: str | Path) -> list[Path]:
    """Write every file of `output` under `out_dir`; returns the paths written, sorted.
    Each target's directory is emptied first, so a removed rule leaves no stale file."""
    import shutil

    out_dir = Path(out_dir)
    for top in sorted({rel.split("/", 1)[0] for rel in output.files if "/" in rel}):
        if top in TARGETS and (out_dir / top).is_dir():
            shutil.rmtree(out_dir / top)
    written = []
    for rel, content in sorted(output.files.items()):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, "utf-8", newline="\n")
        written.append(path)
    return written
