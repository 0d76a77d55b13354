# IP-Adapter Plus on SDXL: a Resampler (16 queries, width 1280, 20 heads,
# depth 4, output 2048) reading OpenCLIP ViT-H/14's patch tokens, as
# ip-adapter-plus_sdxl_vit-h.
_base_ = ['./sdxl_mini_dataset.py']

model = dict(
    image_encoder=dict(subfolder='models/image_encoder'),
    image_projection=dict(
        _delete_=True,
        type='IPAdapterPlusImageProjection',
        hidden_dims=1280,
        num_tokens=16,
    ),
)
