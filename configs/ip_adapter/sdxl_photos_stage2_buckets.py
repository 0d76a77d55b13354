# The official SDXL recipe, stage 2: aspect-ratio buckets around 1024², from
# stage 1's adapter, warmup then cosine, an EMA of the adapter kept beside it
# (export it with tools/convert.py --ema).
_base_ = [
    '../_base_/models/sdxl_ip_adapter.py',
    '../_base_/datasets/photos_sdxl_buckets.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_warmup_cosine.py',
    '../_base_/default_runtime.py',
]
model = dict(
    family=dict(objective=dict(snr_gamma=5.0)),  # min-SNR-γ
    pretrained_ip_adapter='work_dirs/sdxl_photos_stage1_512/ip_adapter.safetensors',
)
custom_hooks = _base_.custom_hooks + [dict(type='AdapterEMAHook', momentum=1e-4)]
