# IP-Adapter on FLUX.1 Kontext [dev] with the CLIP ViT-L/14 image encoder, in
# XLabs' FLUX.1 layout: 4 image tokens of 4096 and image K/V (with biases) in
# the 19 double-stream blocks. Training conditions on each record's input
# image as FluxKontextPipeline does (its latents beside the noisy ones) and
# feeds the guidance-distilled model its default guidance, 3.5; the adapter
# reads the reference. FluxKontextPipeline.load_ip_adapter loads the file.
model = dict(
    type='IPAdapter',
    pretrained_model_name_or_path='black-forest-labs/FLUX.1-Kontext-dev',
    family=dict(type='FluxKontext', guidance_scale=3.5),
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
