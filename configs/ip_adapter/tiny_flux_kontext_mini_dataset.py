# flux_kontext_mini_dataset on the tiny FLUX.1 Kontext family (FLUX.1-shaped,
# tiny CLIP vision tower) at 64 px, in fp32: seconds on a CPU.
# Write the family first: python tools/make_tiny_models.py
_base_ = ['./flux_kontext_mini_dataset.py']

model = dict(
    pretrained_model_name_or_path='work_dirs/tiny_models/tiny_flux_kontext',
    family=dict(max_sequence_length=32),
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/tiny_models/tiny_flux_kontext/image_encoder'
    ),
    frozen_dtype=None,
    gradient_checkpointing=False,
    generation_cfg=dict(steps=4, height=64, width=64),
)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
)

train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(resolution=64)
)
val_evaluator = dict(clip_model='work_dirs/tiny_models/tiny_clip')
test_evaluator = val_evaluator
