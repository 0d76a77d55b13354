# Qwen-Image-shaped base (its own 3D VAE, a Qwen2.5-VL text encoder)
# pretrained on the shapes world (tools/shapes_world.py), its adapter (the
# kit's processor on every joint-attention block) trained on the world's
# pairs: batch 64, lr 1e-3, 600 steps.
_base_ = [
    '../_base_/models/qwen_image_ip_adapter.py',
    '../_base_/datasets/shapes_world.py',
    '../_base_/datasets/shapes_world_eval.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained_model_name_or_path='work_dirs/shapes_world/qwen_image',
    family=dict(max_sequence_length=16),  # the text length the base learned
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/shapes_world/qwen_image/image_encoder'
    ),
    # QwenImagePipeline's documented call: true CFG 4 against the negative
    # prompt (here the empty one the base learned as unconditional).
    generation_cfg=dict(
        steps=20,
        guidance_scale=None,
        negative_prompt='',
        true_cfg_scale=4.0,
        height=32,
        width=32,
    ),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=12, val_interval=3)  # 12 x 50 = 600 steps
default_hooks = dict(checkpoint=dict(interval=200))
