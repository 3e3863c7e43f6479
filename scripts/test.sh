#!/usr/bin/env bash
# The whole test run, from a fresh clone: install test dependencies, build the
# reference peer and a debug wheel, install the wheel, lint, then run
# `cargo test` and `pytest` inside a network namespace that holds only
# loopback, so nothing can send a packet off this machine.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -k ping         # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mosaik-target}"
PYTHON="${PYTHON:-python3}"
WHEELS="$CARGO_TARGET_DIR/wheels"

step() { printf '\n== %s\n' "$*"; }

step "test dependencies (pyproject's [test] extra, plus maturin)"
"$PYTHON" - <<'PY' > "$CARGO_TARGET_DIR.requirements.txt"
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))
print("\n".join(project["project"]["optional-dependencies"]["test"]))
print(project["build-system"]["requires"][0])
PY
"$PYTHON" -m pip install -q --disable-pip-version-check -r "$CARGO_TARGET_DIR.requirements.txt"

step "build: core tests, reference peer, debug wheel (reused from $CARGO_TARGET_DIR)"
cargo test --locked --no-run -p mosaik-core 2>&1 | tail -n 1
cargo build --locked -p mosaik-interop-peer 2>&1 | tail -n 1
rm -rf "$WHEELS"
"$PYTHON" -m maturin build --locked --profile dev -o "$WHEELS" 2>&1 | tail -n 1
"$PYTHON" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/*.whl

step "lint"
cargo fmt --all --check
cargo clippy --locked -p mosaik-core -p mosaik-python -p mosaik-interop-peer --all-targets -- -D warnings 2>&1 | tail -n 1
"$PYTHON" -m ruff check python tests examples docs/snippets docs/_ext
"$PYTHON" -m ruff format --check python tests examples docs/snippets docs/_ext

step "tests, inside a loopback-only network namespace"
# Arguments reach the inner shell as "$@" untouched.
unshare --net -- sh -c '
  set -e
  ip link set lo up
  cargo test --locked --offline -p mosaik-core
  exec "$0" -m pytest tests -p no:cacheprovider "$@"
' "$PYTHON" "$@"
