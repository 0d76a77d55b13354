#!/usr/bin/env bash
# Install (as tools/install.sh does) and run the test suite, offline, on every
# core (pytest-xdist; PYTEST_WORKERS=0 runs it in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
# shellcheck disable=SC1091
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
python -m pytest -n "${PYTEST_WORKERS:-logical}" --dist worksteal "$@"
