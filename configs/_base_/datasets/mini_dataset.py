# The 5-image dataset that ships in data/mini_dataset, at 512 px (SD1.5).
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='PreprocessReference'),  # as the image encoder's processor
    dict(type='ResizeShortEdge'),  # to the dataset's resolution
    dict(type='CenterCrop'),
    dict(type='ToVAEInput'),
    dict(type='PackInputs'),
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
        resolution=512,  # the one knob: every resize and crop
        pipeline=train_pipeline,
    ),
)
