# sdxl_mini_dataset with DeepSpeed ZeRO-2 (FlexibleRunner; needs deepspeed):
#   torchrun --nproc_per_node 8 tools/train.py THIS --launcher pytorch
_base_ = [
    '../_base_/models/sdxl_ip_adapter.py',
    '../_base_/datasets/mini_dataset_sdxl.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/default_runtime.py',
    '../_base_/strategies/deepspeed_zero2.py',
]
# The schedule of adamw_10e, whose OptimWrapper DeepSpeed replaces.
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=10, val_interval=5)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
