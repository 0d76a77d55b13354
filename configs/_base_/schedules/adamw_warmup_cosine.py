# adamw_warmup_constant's AdamW at 1e-4 and 500 iterations of linear warmup,
# then a cosine decay to 1e-6 over the run (max_epochs, counted in iterations).
_base_ = ['./adamw_warmup_constant.py']

param_scheduler = [
    *_base_.param_scheduler,
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True,
    ),
]
