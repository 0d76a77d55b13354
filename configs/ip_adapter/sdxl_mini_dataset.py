# SDXL base + OpenCLIP ViT-bigG/14, the mini dataset, 10 epochs, batch 1, 1024 px.
_base_ = [
    '../_base_/models/sdxl_ip_adapter.py',
    '../_base_/datasets/mini_dataset_sdxl.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]
