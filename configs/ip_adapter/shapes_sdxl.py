# SDXL-shaped base pretrained on the shapes world (tools/shapes_world.py),
# its adapter trained on the world's pairs: batch 64, lr 1e-3, 600 steps.
_base_ = [
    '../_base_/models/sdxl_ip_adapter.py',
    '../_base_/datasets/shapes_world_sdxl.py',
    '../_base_/datasets/shapes_world_eval.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained_model_name_or_path='work_dirs/shapes_world/sdxl',
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/shapes_world/sdxl/image_encoder',
        subfolder=None,
    ),
    # StableDiffusionXLPipeline's defaults: guidance 5, no negative prompt.
    generation_cfg=dict(
        steps=20, guidance_scale=5.0, negative_prompt=None, height=32, width=32
    ),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=12, val_interval=3)  # 12 x 50 = 600 steps
default_hooks = dict(checkpoint=dict(interval=200))
