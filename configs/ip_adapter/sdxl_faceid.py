# IP-Adapter-FaceID on SDXL (as h94/IP-Adapter-FaceID ip-adapter-faceid_sdxl):
# a 512-d ArcFace embedding -> MLP -> 4 tokens, and a rank-128 LoRA on every
# UNet attention layer. Records carry face_embedding (tools/prepare_faces.py).
# The image encoder is not read by FaceID (only by FaceID-Plus).
_base_ = [
    '../_base_/models/sdxl_ip_adapter.py',
    '../_base_/datasets/mini_faces_sdxl.py',
    '../_base_/schedules/adamw_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    image_projection=dict(
        _delete_=True,
        type='IPAdapterFaceIDImageProjection',
        num_tokens=4,
        lora_rank=128,
    )
)
