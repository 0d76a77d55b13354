# AdamW at 1e-4 (the paper's), 500 iterations of linear warmup, then constant
# (no scheduler after the warmup: the optimizer's own rate).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=10, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
]
