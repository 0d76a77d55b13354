#!/usr/bin/env bash
# Install the web UI's extra (Gradio) into the virtual environment that
# tools/install.sh made; with --browser, also what the browser test needs:
# Playwright's Python package and Debian's chromium (apt-get, as root).
# Quick when everything is there already.
#
#   bash tools/install_webui.sh [--browser]      # VENV=path picks the env
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PIP="pip install --quiet --disable-pip-version-check"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
$PIP -c requirements/constraints.txt -r requirements/webui.txt
if [ "${1:-}" = "--browser" ]; then
    $PIP -c requirements/constraints.txt -r requirements/browser_tests.txt
    if ! command -v chromium >/dev/null; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
                >/dev/null
        else
            echo "no chromium: run 'apt-get install chromium' as root" \
                 "(the browser test is skipped without it)" >&2
        fi
    fi
fi
echo "installed the web UI's extra into $VENV"
