# The shapes world's adapter pairs (see shapes_world.py) with SDXL's size
# and crop time ids.
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='PreprocessReference'),  # as the image encoder's processor
    dict(type='ResizeShortEdge'),
    dict(type='CenterCrop'),
    dict(type='ComputeTimeIds'),
    dict(type='ToVAEInput'),
    dict(
        type='PackInputs',
        input_keys=('pixel_values', 'reference_pixel_values', 'text', 'time_ids'),
    ),
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
