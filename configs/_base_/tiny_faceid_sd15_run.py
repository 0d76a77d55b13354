# What the tiny sd15 FaceID leaves (tiny_sd15_faceid{,_plus,_plusv2}.py) change
# in their real recipe: the tiny sd15 family (and its image encoder, read by
# FaceID-Plus), LoRA rank 8, 4 sampling steps, 64 px in the main process. A
# leaf lists this file beside its recipe and takes each part by name (mmengine
# lets no two bases set the same key).
_tiny_model = dict(
    pretrained_model_name_or_path='work_dirs/tiny_models/tiny_sd15',
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/tiny_models/tiny_sd15/image_encoder',
        subfolder=None,
    ),
    image_projection=dict(lora_rank=8),
    generation_cfg=dict(steps=4),
)
_tiny_train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(resolution=64)
)
