# The shapes world's judge: every held-out reference (54, never trained on)
# with an empty prompt at scales 0, 0.5 and 1, each output's colour and shape
# read by the world's classifier (ReferenceMatchMetric). Validation: the 6
# quick cases at scale 1.
eval_pipeline = [
    dict(type='LoadImage'),
    dict(
        type='PackInputs',
        input_keys=('img', 'prompt', 'scale', 'seed'),
        meta_keys=('case_id', 'img_path', 'text'),
    ),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='IPAdapterEvalDataset',
        ann_file='work_dirs/shapes_world/heldout/cases.json',
        min_image_side=32,
        empty_prompt=True,
        scales=(0.0, 0.5, 1.0),
        seeds=(0,),
        pipeline=eval_pipeline,
    ),
)
# Validation: the test loader on the quick cases, at scale 1.
val_dataloader = dict(
    test_dataloader,
    dataset=dict(test_dataloader['dataset'], quick=True, scales=(1.0,)),
)
val_evaluator = dict(type='ReferenceMatchMetric')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
