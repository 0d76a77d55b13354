# IP-Adapter-FaceID on the shapes world's SD1.5 base (as shapes_sd15.py): the
# "face" is the reference's shape, its identity the 64-d embedding of the
# world's CLIP vision tower (ShapesFaceEmbedder, prepared by
# tools/prepare_faces.py: docs/faceid.md, "It learns"). The world's
# calibration, batch 64, lr 1e-3, 600 steps; a rank-8 LoRA for the tiny UNet.
_base_ = [
    '../_base_/models/sd15_ip_adapter.py',
    '../_base_/datasets/shapes_world_faces.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained_model_name_or_path='work_dirs/shapes_world/sd15',
    image_encoder=dict(  # loaded, not read: FaceID reads the face embedding
        pretrained_model_name_or_path='work_dirs/shapes_world/sd15/image_encoder'
    ),
    image_projection=dict(
        _delete_=True,
        type='IPAdapterFaceIDImageProjection',
        id_embed_dim=64,
        lora_rank=8,
    ),
    generation_cfg=dict(
        steps=20, guidance_scale=7.5, negative_prompt=None, height=32, width=32
    ),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=12, val_interval=3)  # 12 x 50 = 600 steps
default_hooks = dict(checkpoint=dict(interval=200))
