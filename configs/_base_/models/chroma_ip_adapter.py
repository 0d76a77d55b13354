# IP-Adapter on Chroma1-HD (a FLUX.1 [schnell] derivative: T5 only, no CLIP
# text tower, no guidance embedding) with the CLIP ViT-L/14 image encoder, in
# XLabs' FLUX.1 layout: 4 image tokens of 4096 and image K/V (with biases) in
# the 19 double-stream blocks; diffusers' ChromaPipeline.load_ip_adapter
# loads the converted file.
model = dict(
    type='IPAdapter',
    pretrained_model_name_or_path='lodestones/Chroma1-HD',
    family=dict(type='Chroma'),
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
