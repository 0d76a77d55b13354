# The mini dataset's FLUX.1 Kontext pairs (data/mini_dataset/edit_pairs.json):
# per record an input image, its target and a reference; the input image is
# resized, cropped and flipped as its target and packed as input_pixel_values.
train_pipeline = [
    dict(type='LoadImage'),  # the target, the reference, the input image
    dict(type='PreprocessReference'),  # as the image encoder's processor
    dict(type='ResizeShortEdge'),  # to the dataset's resolution
    dict(type='CenterCrop'),
    dict(type='ToVAEInput'),
    dict(
        type='PackInputs',
        input_keys=(
            'pixel_values',
            'reference_pixel_values',
            'text',
            'input_pixel_values',
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
        ann_file='data/mini_dataset/edit_pairs.json',
        resolution=512,  # the one knob: every resize and crop
        pipeline=train_pipeline,
    ),
)
