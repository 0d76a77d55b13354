# IP-Adapter on SDXL base 1.0 with the OpenCLIP ViT-bigG/14 image encoder of
# the official ip-adapter_sdxl (h94/IP-Adapter, sdxl_models/image_encoder).
model = dict(
    type='IPAdapter',
    pretrained_model_name_or_path='stabilityai/stable-diffusion-xl-base-1.0',
    family=dict(type='SDXL'),
    image_encoder=dict(
        type='CLIPImageEncoder',
        pretrained_model_name_or_path='h94/IP-Adapter',
        subfolder='sdxl_models/image_encoder',
    ),
    image_projection=dict(type='IPAdapterImageProjection', num_tokens=4),
    text_drop_rate=0.05,
    image_drop_rate=0.05,
    both_drop_rate=0.05,
)
