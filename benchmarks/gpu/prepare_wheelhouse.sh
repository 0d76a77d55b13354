#!/usr/bin/env bash
# Prepare .whl/ on a machine with PyPI: what benchmarks/gpu/run.sh installs on
# a device machine (Python 3.12, x86-64, CUDA torch, transformers, accelerate,
# safetensors present; no diffusers, mmengine, mmcv-lite, openmim; no network).
# Never torch. The versions are requirements/constraints.txt's; transformers
# is carried too (the machine's is older than the one tested here), and regex
# (transformers checks its version at import), setuptools < 81 (mim imports
# pkg_resources), and the pure-Python needs the machine lacks. Plus the kit's
# own wheel, a fallback should building the checkout there fail. torchao for
# the int8 / fp8 quantized bases.
#
#   bash benchmarks/gpu/prepare_wheelhouse.sh      # then carry .whl (64 MiB max)
#   PY_VERSION=3.11 WHEELHOUSE=/tmp/whl311 bash ...  # for a local rehearsal
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
PY_VERSION=${PY_VERSION:-3.12}
DEST=${WHEELHOUSE:-.whl}
rm -rf "$DEST" && mkdir -p "$DEST"
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
$PYTHON -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$PY_VERSION" --implementation cp "${platforms[@]}" -d "$DEST" \
    diffusers==0.42.1 mmengine==0.10.7 mmcv-lite==2.2.0 openmim==0.3.9 \
    transformers==5.23.0 regex==2026.11.19 'setuptools==80.10.2' \
    addict==2.4.0 yapf==0.43.0 platformdirs==4.14.8 termcolor==3.3.0 \
    model-index==0.1.11 ordered-set==4.1.0 torchao==0.18.0
# NF4 (model.quantize) needs bitsandbytes: 43 MB, past the 64 MiB carry with
# the rest, so only when asked (WITH_BITSANDBYTES=1; or if the machine has it).
if [ "${WITH_BITSANDBYTES:-0}" = 1 ]; then
    $PYTHON -m pip download -q --no-deps --only-binary=:all: \
        --python-version "$PY_VERSION" --implementation cp "${platforms[@]}" \
        -d "$DEST" bitsandbytes==0.50.2
fi
$PYTHON -m pip wheel -q --no-deps --no-build-isolation -w "$DEST" .
ls -1 "$DEST" && du -sh "$DEST"
