# Qwen-Image + CLIP ViT-L/14 (the kit's FLUX-form adapter), the mini dataset,
# 10 epochs, batch 1, 1024 px. The 20B transformer and the 7B text encoder in
# bf16 under bf16 autocast, with gradient checkpointing.
_base_ = [
    '../_base_/models/qwen_image_ip_adapter.py',
    '../_base_/datasets/mini_dataset.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(dataset=dict(resolution=1024))
model = dict(frozen_dtype='bf16', gradient_checkpointing=True)
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
