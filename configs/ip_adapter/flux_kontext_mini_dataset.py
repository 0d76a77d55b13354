# FLUX.1 Kontext [dev] + CLIP ViT-L/14 (XLabs' layout), the mini dataset's edit
# pairs (input image, target, reference), 10 epochs, batch 1, 1024 px. The 12B
# frozen model in bf16 under bf16 autocast, with gradient checkpointing.
_base_ = [
    '../_base_/models/flux_kontext_ip_adapter.py',
    '../_base_/datasets/mini_dataset_edits.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(dataset=dict(resolution=1024))
model = dict(frozen_dtype='bf16', gradient_checkpointing=True)
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
