#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine, then runs lint and every test.
# Used by the README's Quick start and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need_apt+=(prometheus)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v prometheus-pushgateway >/dev/null || need_apt+=(prometheus-pushgateway)
command -v victoria-metrics >/dev/null || need_apt+=(victoria-metrics)  # the second query engine
command -v openssl >/dev/null || need_apt+=(openssl)  # a test CA for client certificates
if ((${#need_apt[@]})); then
  echo "installing ${need_apt[*]} from Debian" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
# axe-core for the accessibility tests (tests/support/browser.py reads it from .cache/npm)
command -v npm >/dev/null || { echo "installing npm from Debian" >&2; SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null; }
[ -f .cache/npm/node_modules/axe-core/axe.min.js ] || npm install --prefix .cache/npm --no-audit --no-fund --silent axe-core@4
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null

.venv/bin/ruff check analyzer tests benchmarks notebooks
.venv/bin/ruff format --check analyzer tests benchmarks notebooks
.venv/bin/mypy  # settings in pyproject.toml: the analyzer package, clean
exec .venv/bin/python -m pytest "$@"
