# Chroma1-HD + CLIP ViT-L/14 (XLabs' FLUX.1 layout), the mini dataset, 10
# epochs, batch 1, 1024 px. The 8.9B frozen model in bf16 under bf16 autocast,
# with gradient checkpointing.
_base_ = [
    '../_base_/models/chroma_ip_adapter.py',
    '../_base_/datasets/mini_dataset.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(dataset=dict(resolution=1024))
model = dict(frozen_dtype='bf16', gradient_checkpointing=True)
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
