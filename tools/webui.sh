#!/usr/bin/env bash
# Install into .venv (as tools/install.sh does, plus the web UI's extra) and
# serve the web UI on http://127.0.0.1:7860.
#
#   bash tools/webui.sh [--host 127.0.0.1] [--port 7860] [--workspace DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
bash tools/install_webui.sh
# shellcheck disable=SC1091
. "${VENV:-.venv}/bin/activate"
exec python tools/webui.py "$@"
