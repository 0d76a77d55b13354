# DeepSpeed ZeRO-2 (mmengine's FlexibleRunner + DeepSpeedStrategy): optimizer
# state and gradients of the adapter sharded over the GPUs, bf16 weights.
# Needs `pip install deepspeed` and CUDA; run with a launcher:
#   torchrun --nproc_per_node N tools/train.py CFG --launcher pytorch
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        reduce_scatter=True,
        allgather_bucket_size=int(5e8),
        reduce_bucket_size=int(5e8),
        overlap_comm=True,
        contiguous_gradients=True,
    ),
    # Checkpoints hold the adapter, not the frozen base.
    exclude_frozen_parameters=True,
)
# DeepSpeed steps the optimizer itself; gradient accumulation goes in
# strategy.gradient_accumulation_steps.
optim_wrapper = dict(
    type='DeepSpeedOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
)
