# The shapes world's adapter pairs (shapes_world.py) with SDXL's size and crop
# time ids.
_base_ = ['./shapes_world.py']

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
