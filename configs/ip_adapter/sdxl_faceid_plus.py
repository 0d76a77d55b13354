# IP-Adapter-FaceID-Plus on SDXL (ip-adapter-faceid-plus_sdxl): the face-ID
# MLP's 4 tokens refined by a perceiver over OpenCLIP ViT-H/14's tokens of the
# aligned face crop; rank-128 LoRA on every UNet attention layer.
_base_ = [
    '../_base_/models/sdxl_ip_adapter.py',
    '../_base_/datasets/mini_faces_sdxl.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    image_encoder=dict(
        pretrained_model_name_or_path='h94/IP-Adapter', subfolder='models/image_encoder'
    ),
    image_projection=dict(
        _delete_=True,
        type='IPAdapterFaceIDPlusImageProjection',
        num_tokens=4,
        shortcut=False,
        lora_rank=128,
    ),
)
