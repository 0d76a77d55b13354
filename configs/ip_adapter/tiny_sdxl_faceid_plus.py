# sdxl_faceid_plus (FaceID-Plus) on the tiny sdxl family at 64 px, LoRA rank 8: seconds
# on a CPU. Write the family first: python tools/make_tiny_models.py
_base_ = ['./sdxl_faceid_plus.py']

model = dict(
    pretrained_model_name_or_path='work_dirs/tiny_models/tiny_sdxl',
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/tiny_models/tiny_sdxl/image_encoder',
        subfolder=None,
    ),
    image_projection=dict(lora_rank=8),
    generation_cfg=dict(steps=4),
)

train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(resolution=64)
)
