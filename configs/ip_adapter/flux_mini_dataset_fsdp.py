# flux_mini_dataset, sharded with FSDP over the GPUs (FlexibleRunner), one
# FSDP unit per transformer block:
#   torchrun --nproc_per_node 8 tools/train.py THIS --launcher pytorch
_base_ = ['./flux_mini_dataset.py', '../_base_/strategies/fsdp.py']

# FSDP's state dict holds every weight it shards; checkpoints stay adapter-only.
model = dict(adapter_only_state_dict=False)
strategy = dict(
    model_wrapper=dict(
        auto_wrap_policy=dict(
            type='block_wrap_policy',
            block_names=['FluxTransformerBlock', 'FluxSingleTransformerBlock'],
        )
    )
)
