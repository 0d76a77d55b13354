# FaceID records (data/mini_faces): each names its face embedding (.npy, 512
# floats) and the aligned face crop, which the image encoder reads (Plus).
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadFaceEmbedding'),  # face_embeds; the crop as the reference
    dict(type='PreprocessReference'),  # as the image encoder's processor
    dict(type='ResizeShortEdge'),  # to the dataset's resolution
    dict(type='CenterCrop'),
    dict(type='ToVAEInput'),
    dict(
        type='PackInputs',
        input_keys=('pixel_values', 'reference_pixel_values', 'text', 'face_embeds'),
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
        resolution=512,
        pipeline=train_pipeline,
    ),
)
