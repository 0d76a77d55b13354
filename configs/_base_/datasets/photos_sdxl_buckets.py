# Stage 2 of the official SDXL recipe: photos_sdxl_512's loader in
# aspect-ratio buckets of ~1024² pixels (sides in 64-px steps, up to 2:1), each
# image resized and cropped to its bucket, a batch never mixing buckets
# (BucketBatchSampler, disjoint per rank); SDXL's time ids follow the real crop.
_base_ = ['./photos_sdxl_512.py']

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='PreprocessReference'),  # as the image encoder's processor
    dict(type='ResizeCropToBucket', random_crop=True),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(type='ComputeTimeIds'),
    dict(type='ToVAEInput'),
    dict(
        type='PackInputs',
        input_keys=('pixel_values', 'reference_pixel_values', 'text', 'time_ids'),
    ),
]
train_dataloader = dict(
    batch_sampler=dict(type='BucketBatchSampler', pad=True),
    dataset=dict(
        resolution=1024,  # the buckets' pixel count: about 1024²
        buckets=dict(step=64, max_aspect=2.0),
        pipeline=train_pipeline,
    ),
)
