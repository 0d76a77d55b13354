# Chroma-shaped base (T5 only, no guidance embedding) pretrained on the shapes
# world (tools/shapes_world.py), its adapter trained on the world's pairs:
# batch 64, lr 1e-3, 600 steps.
_base_ = [
    '../_base_/models/chroma_ip_adapter.py',
    '../_base_/datasets/shapes_world.py',
    '../_base_/datasets/shapes_world_eval.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained_model_name_or_path='work_dirs/shapes_world/chroma',
    family=dict(max_sequence_length=16),  # the T5 length the base learned
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/shapes_world/chroma/image_encoder'
    ),
    # ChromaPipeline's default: real CFG 5 against an empty negative prompt.
    generation_cfg=dict(
        steps=20, guidance_scale=5.0, negative_prompt='', height=32, width=32
    ),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=12, val_interval=3)  # 12 x 50 = 600 steps
default_hooks = dict(checkpoint=dict(interval=200))
