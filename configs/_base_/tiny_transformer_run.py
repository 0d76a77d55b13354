# What the tiny transformer leaves (tiny_{sd35,flux,flux_kontext,chroma,
# qwen_image}_mini_dataset.py) change in their real recipe: 64 px in fp32
# without checkpointing, prompts of 32 tokens, 4 sampling steps, the tiny CLIP
# for the metric. A leaf lists this file beside its recipe and takes each part
# by name (mmengine lets no two bases set the same key).
_tiny_model = dict(
    family=dict(max_sequence_length=32),
    frozen_dtype=None,
    gradient_checkpointing=False,
    generation_cfg=dict(steps=4, height=64, width=64),
)
_tiny_optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
)
_tiny_train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(resolution=64)
)
_tiny_val_evaluator = dict(clip_model='work_dirs/tiny_models/tiny_clip')
