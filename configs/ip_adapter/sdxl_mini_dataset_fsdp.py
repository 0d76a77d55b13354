# sdxl_mini_dataset, sharded with FSDP over the GPUs (FlexibleRunner):
#   torchrun --nproc_per_node 8 tools/train.py THIS --launcher pytorch
_base_ = ['./sdxl_mini_dataset.py', '../_base_/strategies/fsdp.py']
# FSDP's state dict holds every weight it shards; checkpoints stay adapter-only.
model = dict(adapter_only_state_dict=False)
