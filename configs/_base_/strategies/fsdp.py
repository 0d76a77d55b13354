# Fully sharded data parallel (mmengine's FlexibleRunner + FSDPStrategy):
# parameters, gradients and optimizer state sharded over the processes. Run
# with a launcher: torchrun --nproc_per_node N tools/train.py CFG --launcher pytorch
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        # Frozen and trainable weights share flat parameters: keep the
        # original parameters so only the adapter's get gradients.
        use_orig_params=True
    ),
    # Every rank gathers the full adapter for the checkpoint (rank 0 writes).
    state_dict_cfg='full',
)
# A config using this base also sets model.adapter_only_state_dict=False:
# FSDP's state dict must hold every weight it shards (the checkpoint hook
# still keeps only the adapter's).
