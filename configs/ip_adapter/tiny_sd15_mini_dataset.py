# The recipe of sd15_mini_dataset (same bases) on the tiny SD1.5-shaped family
# at 64 px: seconds on a CPU.
# Write the family first: python tools/make_tiny_models.py
_base_ = [
    '../_base_/models/sd15_ip_adapter.py',
    '../_base_/datasets/mini_dataset.py',
    '../_base_/datasets/eval_set.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    pretrained_model_name_or_path='work_dirs/tiny_models/tiny_sd15',
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/tiny_models/tiny_sd15/image_encoder'
    ),
    generation_cfg=dict(steps=4),
)

train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(resolution=64)
)
val_evaluator = dict(clip_model='work_dirs/tiny_models/tiny_clip')
test_evaluator = val_evaluator
