"""Helpers shared by the tests, in one importable package: `from support.<module> import ...`
(pyproject's `[tool.pytest.ini_options] pythonpath = ["tests"]` puts tests/ on the path, so no
test edits sys.path or loads a helper by file path).

- `samples`: where the real-format samples are, and parameter lists that say when they are not;
- `harness`, `expectations`, `normalizers`, `eql`: the scenario replay harness (tests/harness);
- `redis_server`: a throw-away redis-server for the shared-store tests (tests/detect, tests/watch);
- `logql`: Grafana's LogQL grammar over queries (tests/compile, tests/alerting).
"""
