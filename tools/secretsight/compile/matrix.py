"""The support matrix: rule x target -> compiled / compiled with workaround (which) /
unsupported (why). Printed by `compile` and written beside the outputs."""

from __future__ import annotations

from collections.abc import Iterable

from secretsight.compile.common import dump_json
from secretsight.compile.defects import WORKAROUNDS
from secretsight.compile.model import STATUS_LABELS, Support

MATRIX_MD = "support-matrix.md"
MATRIX_JSON = "support-matrix.json"


def _sorted(cells: Iterable[Support]) -> list[Support]:
    return sorted(cells, key=lambda c: (c.rule, c.target))


def cell_text(cell: Support) -> str:
    label = STATUS_LABELS[cell.status]
    if cell.status == "workaround":
        return f"{label} ({', '.join(cell.details)})"
    if cell.status == "unsupported":
        return f"{label}: {'; '.join(cell.details)}"
    return label


def to_json(cells: Iterable[Support]) -> str:
    cells = _sorted(cells)
    return dump_json({
        "cells": [c.to_json() for c in cells],
        "workarounds": {k: WORKAROUNDS[k] for k in sorted(
            {d for c in cells if c.status == "workaround" for d in c.details})},
    }) + "\n"


def to_markdown(cells: Iterable[Support]) -> str:
    cells = _sorted(cells)
    targets = sorted({c.target for c in cells})
    rules = sorted({c.rule for c in cells})
    grid = {(c.rule, c.target): c for c in cells}
    lines = ["# SecretSight support matrix", "",
             "| rule | " + " | ".join(targets) + " |",
             "|---|" + "---|" * len(targets)]
    for rule in rules:
        row = []
        for target in targets:
            cell = grid.get((rule, target))
            row.append(cell_text(cell).replace("|", "\\|") if cell else "")
        lines.append(f"| {rule} | " + " | ".join(row) + " |")
    used = sorted({d for c in cells if c.status == "workaround" for d in c.details})
    if used:
        lines += ["", "## Workarounds", ""]
        lines += [f"- `{key}`: {WORKAROUNDS[key]}" for key in used]
    return "\n".join(lines) + "\n"


def summary(cells: Iterable[Support]) -> str:
    """One line per target: how many rules compiled, with workarounds, unsupported."""
    by_target: dict[str, dict[str, int]] = {}
    for c in cells:
        counts = by_target.setdefault(c.target, {"compiled": 0, "workaround": 0, "unsupported": 0})
        counts[c.status] += 1
    return "\n".join(
        f"{t}: {n['compiled']} compiled, {n['workaround']} with workaround, "
        f"{n['unsupported']} unsupported"
        for t, n in sorted(by_target.items())
    )
