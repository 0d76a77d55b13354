# Runtime shared by every config: logging, adapter-only checkpoints, seeding.
default_scope = 'diffengine_ipa'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # Every 5 iterations, and each of the first 3 (a slow start shows).
    logger=dict(type='ProgressLoggerHook', interval=5, first_iters=3),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every 5 iterations, keep the last 3; files and the last_checkpoint
    # pointer written atomically.
    checkpoint=dict(
        type='AtomicCheckpointHook',
        interval=5,
        by_epoch=False,
        max_keep_ckpts=3,
        save_last=True,
        backend_args=dict(backend='atomic_local'),
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
custom_hooks = [
    dict(type='AdapterCheckpointHook'),
    # Skip updates of a NaN/Inf loss; stop after 5 in a row (never saving
    # NaN weights).
    dict(type='NonFiniteLossGuardHook', max_consecutive=5),
    # Random state in checkpoints (exact --resume); validation leaves no trace.
    dict(type='RandomStateHook'),
    # Sample images of the first validation cases, every 5 epochs.
    dict(type='IPAdapterVisualizationHook', interval=5),
    # --resume / load_from: the file checked as every adapter file is; a
    # changed learning rate followed, a changed batch size or process count
    # refused with one line.
    dict(type='ResumeCheckHook'),
    # A progress bar with ETA over the images validation and test generate
    # (at a terminal).
    dict(type='GenerationProgressHook'),
    # Training from an embedding cache: the text, image and VAE encoders are
    # freed (validation loads the text and image encoders while it generates).
    dict(type='ReleaseEncodersHook'),
    # At each validation: a fixed held-out batch's loss with its references,
    # shuffled ones and none -> val/reference_gain, val/no_reference_gain;
    # one warning line after `patience` validations with a gain <= 0.
    dict(type='ReferenceGainHook', num_samples=4, patience=3),
]

# Data-parallel training (--launcher pytorch|slurm|mpi): DDP wraps the model
# and, the base being frozen, registers and all-reduces the adapter's
# parameters only. Every adapter parameter gets a gradient every step (a
# dropped image still goes through the projection), so no
# find_unused_parameters search slows each step; the frozen models have no
# buffers that change, so none are broadcast.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False,
)
# `--auto-scale-lr`: the learning rate scales with the effective batch size
# (batch_size x processes x optim_wrapper.accumulative_counts) against the
# paper's recipe, 1e-4 at 8 GPUs x 8 images.
auto_scale_lr = dict(enable=False, base_batch_size=64)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True, window_size=5)
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False

# Settings chosen for the machine (diffengine_ipa/engine/hardware.py): 'auto'
# decides a setting, a value overrides it, and a setting not named here stays
# as the config writes it. The settings: amp (bf16 | fp16 | fp32), frozen_dtype,
# channels_last, attention (SDPA kernels), num_workers, threads, compile,
# allocator (retain: freed host memory kept for the next CPU step). The train
# script prints what it chose and why; `--amp auto` asks for amp and
# frozen_dtype. The *_fast configs ask for all of them.
hardware = dict()
# False: no validation and no sample images during training (one switch).
validate = True
