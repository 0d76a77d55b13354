# The FaceID records at SDXL's 1024 px, with the size/crop time ids.
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadFaceEmbedding'),  # face_embeds; the crop as the reference
    dict(type='PreprocessReference'),
    dict(type='ResizeShortEdge'),
    dict(type='CenterCrop'),
    dict(type='ComputeTimeIds'),
    dict(type='ToVAEInput'),
    dict(
        type='PackInputs',
        input_keys=(
            'pixel_values',
            'reference_pixel_values',
            'text',
            'time_ids',
            'face_embeds',
        ),
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
        ann_file='data/mini_faces/data.json',
        resolution=1024,
        pipeline=train_pipeline,
    ),
)
