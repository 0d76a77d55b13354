# Evaluation on data/eval_set: validation runs the 3 quick cases at scale 1.0
# (during training), test runs every case at 4 scales with 4 seeds.
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
        data_root='data',
        ann_file='eval_set/cases.json',
        quick=False,
        scales=(0.0, 0.5, 1.0, 1.5),
        seeds=(0, 1, 2, 3),
        pipeline=eval_pipeline,
    ),
)
# Validation: the test loader on the quick cases, at scale 1.0 with seed 0.
val_dataloader = dict(
    test_dataloader,
    dataset=dict(test_dataloader['dataset'], quick=True, scales=(1.0,), seeds=(0,)),
)
val_evaluator = dict(type='IPAdapterMetric', clip_model='openai/clip-vit-large-patch14')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
