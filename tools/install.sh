#!/usr/bin/env bash
# Install the pinned stack and diffengine_ipa into a virtual environment.
#
#   bash tools/install.sh            # into .venv
#   VENV=/path/to/env bash tools/install.sh
#
# torch goes first and stays pinned: an unpinned torch pulls a multi-GB CUDA
# build. openmim goes in without its dependency chain, which would downgrade
# setuptools, requests, urllib3, rich... (see requirements/mim.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PIP="pip install --quiet --disable-pip-version-check"

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
$PIP --upgrade pip 'setuptools>=77.0.3,<81' wheel
$PIP torch==2.13.0
$PIP -c requirements/constraints.txt -r requirements/runtime.txt \
    -r requirements/tests.txt
$PIP --no-deps openmim==0.3.9
$PIP -c requirements/constraints.txt -r requirements/mim.txt
# mim 0.3.9 fails with a later click ('Sentinel' object has no attribute
# 'split'); huggingface-hub asks for click >= 8.4.2 for its own CLI only, so
# click 8.2.1 goes in last, without the resolver (pip check names the pair).
$PIP --no-deps click==8.2.1
# Not editable: mim finds the train script and configs only in a real install.
$PIP --no-deps --no-build-isolation --force-reinstall .
echo "installed diffengine_ipa into $VENV"
