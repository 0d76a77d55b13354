# IP-Adapter on Stable Diffusion 1.5 with the CLIP ViT-L/14 image encoder.
model = dict(
    type='IPAdapter',
    pretrained_model_name_or_path='stable-diffusion-v1-5/stable-diffusion-v1-5',
    family=dict(type='SD15'),
    image_encoder=dict(
        type='CLIPImageEncoder',
        pretrained_model_name_or_path='openai/clip-vit-large-patch14',
        subfolder=None,
    ),
    image_projection=dict(type='IPAdapterImageProjection', num_tokens=4),
    text_drop_rate=0.05,
    image_drop_rate=0.05,
    both_drop_rate=0.05,
)
