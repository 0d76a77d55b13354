# Stage 1 of the official SDXL recipe: square 512 px crops, with SDXL's size
# and crop time ids. ann_file: any source IPAdapterDataset reads (JSON/JSONL,
# a folder of images + .txt captions, a HF dataset folder, .parquet files).
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='PreprocessReference'),  # as the image encoder's processor
    dict(type='ResizeShortEdge'),  # to the dataset's resolution
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(type='ComputeTimeIds'),
    dict(type='ToVAEInput'),
    dict(
        type='PackInputs',
        input_keys=('pixel_values', 'reference_pixel_values', 'text', 'time_ids'),
    ),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='IPAdapterDataset',
        ann_file='data/mini_dataset/data.json',
        resolution=512,  # the one knob: every resize and crop
        on_bad_record='skip',
        pipeline=train_pipeline,
    ),
)
