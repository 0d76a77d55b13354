# SD3.5 Large + SigLIP so400m (InstantX's layout), the mini dataset, 10 epochs,
# batch 1, 1024 px. The 8B frozen model in bf16 under bf16 autocast, with
# gradient checkpointing: see the README for what one GPU fits.
_base_ = [
    '../_base_/models/sd35_ip_adapter.py',
    '../_base_/datasets/mini_dataset.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(dataset=dict(resolution=1024))
model = dict(frozen_dtype='bf16', gradient_checkpointing=True)
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
