# SD3.5-shaped base pretrained on the shapes world (tools/shapes_world.py),
# its adapter (a small time-aware Resampler on SigLIP) trained on the world's
# pairs: batch 64, lr 1e-3, 600 steps.
_base_ = [
    '../_base_/models/sd35_ip_adapter.py',
    '../_base_/datasets/shapes_world.py',
    '../_base_/datasets/shapes_world_eval.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained_model_name_or_path='work_dirs/shapes_world/sd35',
    family=dict(max_sequence_length=16),  # the T5 length the base learned
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/shapes_world/sd35/image_encoder'
    ),
    image_projection=dict(hidden_dims=64, num_tokens=16, timestep_in_dim=32),
    # StableDiffusion3Pipeline's defaults: guidance 7, no negative prompt.
    generation_cfg=dict(
        steps=20, guidance_scale=7.0, negative_prompt=None, height=32, width=32
    ),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=12, val_interval=3)  # 12 x 50 = 600 steps
default_hooks = dict(checkpoint=dict(interval=200))
