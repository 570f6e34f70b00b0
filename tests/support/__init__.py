"""Helpers shared by the tests, in one importable package: `from support.<module> import ...`
(pyproject's `[tool.pytest.ini_options] pythonpath = ["tests"]` puts tests/ on the path, so no
test edits sys.path or loads a helper by file path).

- `samples`: where the real-format samples are, and parameter lists that say when they are not;
- `golden_pairs`: the normalizers' golden raw-line -> items pairs (tests/golden);
- `vrl_programs`, `lua_filters`: the VRL programs on vrl-python and the Fluent Bit Lua filters on
  LuaJIT, called as Vector and Fluent Bit call them; `fluentbit_configs`: Fluent Bit's two config
  formats read into one shape;
- `harness`, `expectations`, `normalizers`, `eql`: the scenario replay harness (tests/harness);
- `rule_cases`: the per-rule positive and negative cases (tests/rules/cases);
- `sigma_cli`: the `sigma` script of sigma-cli (a base dependency);
- `compiled_rules`: the repo's rules compiled once per target (tests/compile, tests/alerting);
- `logql`: Grafana's LogQL grammar over queries (tests/compile, tests/alerting);
- `event_builders`, `event_streams`, `delivery_orders`: normalized events built compactly, long
  deterministic streams of them, and the orders a stream may deliver them in (tests/detect,
  tests/stream, tests/watch);
- `redis_server`: a throw-away redis-server for the shared-store tests (tests/detect, tests/watch);
  `state_fixtures`: the `redis_server` and `state_url` fixtures their conftests import;
- `watch_process`: `secretsight watch` as a real process, killed with SIGKILL mid-stream and
  restarted (tests/watch, tests/stream);
- `prometheus_tools`, `alerting_stack`: Debian's amtool/promtool and the generated alerting
  files; real Alertmanager/Prometheus processes and a webhook receiver (tests/alerting).
"""
