#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine with Python 3.11, then run it.
# Idempotent: re-running skips what is already there. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
  step "installing redis-server (Debian) for the shared-state store tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
fi

# splunk-appinspect (test extra) loads libmagic through python-magic.
if ! python3 -c 'import ctypes.util, sys; sys.exit(not ctypes.util.find_library("magic"))'; then
  step "installing libmagic1 (Debian) for splunk-appinspect"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmagic1 >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmagic1 >/dev/null
  fi
fi

if ! command -v amtool >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  step "installing promtool and amtool (Debian prometheus, prometheus-alertmanager) for the alerting tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  step "creating .venv"
  python3 -m venv .venv
fi
step "installing secretsight with its test extras"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

if command -v npm >/dev/null 2>&1 && [ -f tests/node/package-lock.json ]; then
  step "installing the LogQL grammar (@grafana/lezer-logql) for the LogQL parse tests"
  npm ci --prefix tests/node --silent --no-audit --no-fund
fi

step "lint (ruff) and types (mypy), as in CI"
.venv/bin/ruff check tools tests benchmarks vector
.venv/bin/mypy tools/secretsight

step "running the test suite"
exec .venv/bin/python -m pytest "$@"
