# IP-Adapter on Qwen-Image with the CLIP ViT-L/14 image encoder, in FLUX.1's
# form (the kit's own processor; no diffusers pipeline of Qwen-Image takes an
# IP-Adapter): 4 image tokens of 3584 (the text stream's width) and image K/V
# (with biases) in all 60 joint-attention blocks. The converted file loads
# with diffengine_ipa.load_ip_adapter(pipe, file) on diffusers'
# QwenImagePipeline.
model = dict(
    type='IPAdapter',
    pretrained_model_name_or_path='Qwen/Qwen-Image',
    family=dict(type='QwenImage'),
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
