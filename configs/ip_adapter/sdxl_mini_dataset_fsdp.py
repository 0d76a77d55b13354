# sdxl_mini_dataset, sharded with FSDP over the GPUs (FlexibleRunner):
#   torchrun --nproc_per_node 8 tools/train.py THIS --launcher pytorch
_base_ = [
    '../_base_/models/sdxl_ip_adapter.py',
    '../_base_/datasets/mini_dataset_sdxl.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
    '../_base_/strategies/fsdp.py',
]
# FSDP's state dict holds every weight it shards; checkpoints stay adapter-only.
model = dict(adapter_only_state_dict=False)
