#!/usr/bin/env bash
# The main job on the embedded default, offline, on a CPU: install, write the
# tiny model families, train with mim on the 5-image mini dataset, convert to
# the official IP-Adapter file, generate an image, evaluate, plot the loss.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
# shellcheck disable=SC1091
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1

CONFIG=configs/ip_adapter/tiny_sd15_mini_dataset.py
WORK_DIR=work_dirs/tiny_sd15_mini_dataset
start=$(date +%s)
python tools/make_tiny_models.py
rm -rf "$WORK_DIR"  # the demo starts over (train refuses to overwrite a run)
mim train diffengine_ipa "$CONFIG" --work-dir "$WORK_DIR"
python tools/convert.py "$WORK_DIR"
python tools/infer.py "$CONFIG" "$WORK_DIR/ip_adapter.safetensors" \
    --image data/mini_dataset/images/cat.jpg --prompt "a cat on a sofa" \
    --out outputs/demo/cat.png
python tools/test.py "$CONFIG" "$WORK_DIR/ip_adapter.safetensors" --quick \
    --out-dir outputs/demo/eval
python tools/plot_loss.py "$WORK_DIR" --out outputs/demo/loss_curve.png
echo "demo: train → convert → infer → evaluate took $(( $(date +%s) - start )) s"
