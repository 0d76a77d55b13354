# The shapes world's adapter pairs (python tools/shapes_world.py): 32 px
# targets captioned with their shape only, each with a reference of the same
# colour and shape elsewhere; batch 64 (the world's calibration).
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='PreprocessReference'),  # as the image encoder's processor
    dict(type='ResizeShortEdge'),
    dict(type='CenterCrop'),
    dict(type='ToVAEInput'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='IPAdapterDataset',
        ann_file='work_dirs/shapes_world/pairs/data.json',
        resolution=32,
        min_image_side=32,
        pipeline=train_pipeline,
    ),
)
