# IP-Adapter Plus on SD1.5: a Resampler (16 queries, width 768, 12 heads,
# depth 4) reading OpenCLIP ViT-H/14's patch tokens, as ip-adapter-plus_sd15.
_base_ = ['./sd15_mini_dataset.py']

model = dict(
    image_encoder=dict(
        pretrained_model_name_or_path='h94/IP-Adapter', subfolder='models/image_encoder'
    ),
    image_projection=dict(
        _delete_=True,
        type='IPAdapterPlusImageProjection',
        hidden_dims=768,
        num_tokens=16,
    ),
)
