#!/usr/bin/env bash
# Sourced by scripts/test, scripts/demo and scripts/bench.
# Creates the project's virtual environment (default .venv, override with EDGEML_VENV) and installs
# the project with its extras from requirements.lock. Reuses the venv when the hash of
# pyproject.toml + requirements.lock is unchanged, so a second run installs nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${EDGEML_VENV:-$ROOT/.venv}
EXTRAS=${EDGEML_EXTRAS:-dev,device}
PYTHON=${PYTHON:-python3}

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "edgeml needs Python >= 3.11, found " + sys.version.split()[0])'

lock_hash=$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -d' ' -f1)-$EXTRAS
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.edgeml-lock-hash" 2>/dev/null)" = "$lock_hash" ]; then
  :
else
  echo "edgeml: preparing $VENV (extras: $EXTRAS)" >&2
  "$PYTHON" -m venv "$VENV"
  pip_install() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
  pip_install --upgrade pip
  # torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
  case ",$EXTRAS," in *,dev,*) pip_install torch==2.13.0 ;; esac
  pip_install -c "$ROOT/requirements.lock" -e "$ROOT[$EXTRAS]"
  echo "$lock_hash" > "$VENV/.edgeml-lock-hash"
fi
export PATH="$VENV/bin:$PATH"
export EDGEML_ROOT="$ROOT"
