# AdamW at 1e-4, 500 iterations of linear warmup, then a cosine decay to 1e-6
# over the run (max_epochs, counted in iterations).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=10, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True,
    ),
]
