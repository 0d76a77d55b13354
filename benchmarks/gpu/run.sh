#!/usr/bin/env bash
# Every GPU check of the kit in one command, on a bare device machine:
#
#   bash benchmarks/gpu/run.sh                 # cuda, full size, 470 s budget
#   bash benchmarks/gpu/run.sh --device cpu --tiny --one-process   # dry run
#
# The machine has Python 3.12, CUDA torch, transformers/accelerate/safetensors
# and no network. The wheels in .whl/ (benchmarks/gpu/prepare_wheelhouse.sh,
# on a machine with PyPI) go into $SITE with --no-deps, never torch; the kit
# itself is installed from this checkout (its wheel in .whl/ if that fails),
# as a real install so that `mim train diffengine_ipa` finds it. Then
# benchmarks/gpu/run.py runs each step time-boxed and writes gpu_run.json,
# gpu_run.md and gpu_run_log.txt into $OUT after every step.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu_results}
SITE=${SITE:-/tmp/diffengine_ipa_site}
PYTHON=${PYTHON:-python3}
WHEELHOUSE=${WHEELHOUSE:-.whl}
export OUT HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 \
    TOKENIZERS_PARALLELISM=false
PIP="$PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE"
mkdir -p "$OUT" "$SITE"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"  # $PWD: the benchmarks package

start=$(date +%s)
if ! $PYTHON -c 'import diffusers, mmengine, mmcv, mim' 2>/dev/null; then
    deps=$(ls "$WHEELHOUSE"/*.whl 2>/dev/null | grep -v '/diffengine_ipa-')
    [ -n "$deps" ] || { echo "no .whl/ wheelhouse: run benchmarks/gpu/prepare_wheelhouse.sh"; exit 1; }
    # shellcheck disable=SC2086
    $PIP $deps || exit 1
fi
if ! $PIP --no-build-isolation . 2>"$OUT/install_kit.log"; then
    echo "installing the checkout failed (see $OUT/install_kit.log): the wheel in $WHEELHOUSE/"
    # shellcheck disable=SC2086
    $PIP "$WHEELHOUSE"/diffengine_ipa-*.whl || exit 1
fi
echo "installed in $(( $(date +%s) - start )) s: $($PYTHON -c 'import diffusers, mmengine, transformers, torch; print("torch", torch.__version__, "diffusers", diffusers.__version__, "mmengine", mmengine.__version__, "transformers", transformers.__version__)')"
exec $PYTHON benchmarks/gpu/run.py --out "$OUT" "$@"
