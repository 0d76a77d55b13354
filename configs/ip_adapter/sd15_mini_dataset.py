# SD1.5 + CLIP ViT-L/14, the mini dataset, 10 epochs, batch 1, 512 px.
_base_ = [
    '../_base_/models/sd15_ip_adapter.py',
    '../_base_/datasets/mini_dataset.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]
