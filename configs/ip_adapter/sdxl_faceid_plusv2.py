# IP-Adapter-FaceID-PlusV2 on SDXL (ip-adapter-faceid-plusv2_sdxl): the face-ID
# MLP's 4 tokens refined by a perceiver over OpenCLIP ViT-H/14's tokens of the
# aligned face crop, plus the MLP tokens themselves (shortcut, --s-scale at
# generation); rank-128 LoRA on every UNet attention layer.
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
        shortcut=True,
        lora_rank=128,
    ),
)
