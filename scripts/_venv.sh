#!/usr/bin/env bash
# Sourced by scripts/test, scripts/demo and scripts/bench.
# Creates the project's virtual environment (default .venv, override with EDGEML_VENV) and installs
# the project with its extras from requirements.lock. Reuses the venv when the hash of
# pyproject.toml + requirements.lock (+ the gdk wheel, when present) is unchanged, so a second run
# installs nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${EDGEML_VENV:-$ROOT/.venv}
EXTRAS=${EDGEML_EXTRAS:-dev,device,twin,infra,litert}
PYTHON=${PYTHON:-python3}
# Real gdk 1.6.2 is not on PyPI: a wheel built from its public tag lies beside the checkout when this
# machine has one (EDGEML_GDK_WHEEL overrides). Without it the gdk tests skip and say why.
GDK_WHEEL=${EDGEML_GDK_WHEEL:-$ROOT/../shared/tools/gdk-1.6.2-py3-none-any.whl}

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "edgeml needs Python >= 3.11, found " + sys.version.split()[0])'

gdk_hash=none
[ -f "$GDK_WHEEL" ] && gdk_hash=$(sha256sum "$GDK_WHEEL" | cut -d' ' -f1)
lock_hash=$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -d' ' -f1)-$EXTRAS-$gdk_hash
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.edgeml-lock-hash" 2>/dev/null)" = "$lock_hash" ]; then
  :
else
  step() { echo "edgeml: $*" >&2; }
  step "preparing $VENV (extras: $EXTRAS); the first install takes a minute or two"
  "$PYTHON" -m venv "$VENV"
  # pip's own progress goes to the terminal when there is one; a line per step otherwise.
  pip_install() {
    local quiet=(-q)
    [ -t 2 ] && quiet=()
    "$VENV/bin/python" -m pip install "${quiet[@]}" --disable-pip-version-check "$@" \
      2> >(grep -v "is ignored: it is neither" >&2)
  }
  step "1/4 pip"
  pip_install --upgrade pip
  # torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
  step "2/4 torch 2.13.0 (CPU, dev only)"
  case ",$EXTRAS," in *,dev,*) pip_install torch==2.13.0 ;; esac
  step "3/4 edgeml[$EXTRAS] from requirements.lock"
  pip_install -c "$ROOT/requirements.lock" -e "$ROOT[$EXTRAS]"
  if [ -f "$GDK_WHEEL" ]; then
    step "4/4 gdk from $GDK_WHEEL"
    pip_install -c "$ROOT/requirements.lock" "$GDK_WHEEL"
  else
    step "4/4 gdk: no wheel at $GDK_WHEEL, the gdk tests will skip (install gdk from its GitHub tag)"
  fi
  echo "$lock_hash" > "$VENV/.edgeml-lock-hash"
  step "ready"
fi
export PATH="$VENV/bin:$PATH"
export EDGEML_ROOT="$ROOT"
