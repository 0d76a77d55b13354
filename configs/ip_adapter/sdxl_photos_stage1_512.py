# The official SDXL recipe, stage 1: square 512 px, batch 8 per GPU, warmup
# then a constant 1e-4. Point it at your data:
#   --cfg-options train_dataloader.dataset.ann_file=/data/photos
# then convert its adapter for stage 2 (sdxl_photos_stage2_buckets.py):
#   python tools/convert.py work_dirs/sdxl_photos_stage1_512
_base_ = [
    '../_base_/models/sdxl_ip_adapter.py',
    '../_base_/datasets/photos_sdxl_512.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_warmup_constant.py',
    '../_base_/default_runtime.py',
]
model = dict(family=dict(objective=dict(snr_gamma=5.0)))  # min-SNR-γ
