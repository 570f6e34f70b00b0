"""Parse LogQL with Grafana's own grammar (`@grafana/lezer-logql`, tests/node/parse_logql.mjs):
the compiled Loki queries (tests/compile) and the dashboard's (tests/alerting)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def parse_logql(queries: list[str]) -> list[dict]:
    """Parse each query with Grafana's LogQL grammar (`@grafana/lezer-logql` under node):
    one `{"ok": bool, "errors": [...]}` per query. Skips the calling test when node or the npm
    packages are missing (`npm ci --prefix tests/node`)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (needed to run @grafana/lezer-logql)")
    if not (NODE_DIR / "node_modules" / "@grafana" / "lezer-logql").is_dir():
        pytest.skip("tests/node/node_modules missing: run `npm ci --prefix tests/node`")
    proc = subprocess.run([node, str(NODE_DIR / "parse_logql.mjs")], input=json.dumps(queries),
                          capture_output=True, text=True, check=True, cwd=NODE_DIR, timeout=60)
    results = json.loads(proc.stdout)
    assert len(results) == len(queries)
    return results
