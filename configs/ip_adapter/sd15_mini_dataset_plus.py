# IP-Adapter Plus on SD1.5: a Resampler (16 queries, width 768, 12 heads,
# depth 4) reading OpenCLIP ViT-H/14's patch tokens, as ip-adapter-plus_sd15.
_base_ = ['./sd15_mini_dataset.py']

model = dict(
    image_encoder_path='h94/IP-Adapter',
    image_encoder_subfolder='models/image_encoder',
    image_projection=dict(
        _delete_=True,
        type='IPAdapterPlusImageProjection',
        hidden_dims=768,
        num_tokens=16))
