# IP-Adapter on FLUX.1 [dev] with the CLIP ViT-L/14 image encoder, in XLabs'
# layout: 4 image tokens of 4096 and image K/V (with biases) in the 19
# double-stream blocks. Training feeds the guidance-distilled model its
# default guidance, 3.5 (model.family.guidance_scale).
model = dict(
    type='IPAdapter',
    pretrained_model_name_or_path='black-forest-labs/FLUX.1-dev',
    family=dict(type='Flux', guidance_scale=3.5),
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
