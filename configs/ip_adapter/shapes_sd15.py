# SD1.5-shaped base pretrained on the shapes world (tools/shapes_world.py),
# its adapter trained on the world's pairs: batch 64, lr 1e-3, 600 steps.
_base_ = [
    '../_base_/models/sd15_ip_adapter.py',
    '../_base_/datasets/shapes_world.py',
    '../_base_/datasets/shapes_world_eval.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained_model_name_or_path='work_dirs/shapes_world/sd15',
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/shapes_world/sd15/image_encoder'
    ),
    # StableDiffusionPipeline's defaults: guidance 7.5, no negative prompt.
    generation_cfg=dict(
        steps=20, guidance_scale=7.5, negative_prompt=None, height=32, width=32
    ),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=12, val_interval=3)  # 12 x 50 = 600 steps
default_hooks = dict(checkpoint=dict(interval=200))
