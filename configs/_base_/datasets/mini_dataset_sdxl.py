# The mini dataset at SDXL's 1024 px, with the per-sample size/crop time ids.
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='PreprocessReference'),  # as the image encoder's processor
    dict(type='ResizeShortEdge'),  # to the dataset's resolution
    dict(type='CenterCrop'),
    dict(type='ComputeTimeIds'),
    dict(type='ToVAEInput'),
    dict(
        type='PackInputs',
        input_keys=('pixel_values', 'reference_pixel_values', 'text', 'time_ids'),
    ),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='IPAdapterDataset',
        ann_file='data/mini_dataset/data.json',
        resolution=1024,  # the one knob: every resize and crop
        pipeline=train_pipeline,
    ),
)
