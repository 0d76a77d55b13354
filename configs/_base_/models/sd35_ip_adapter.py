# IP-Adapter on Stable Diffusion 3.5 Large with SigLIP so400m (384 px), in
# InstantX's layout: a time-aware Resampler (64 tokens, width 1280, 20 heads)
# reading SigLIP's penultimate tokens, and image K/V with their own AdaLN and
# RMS norms in all 38 joint-attention blocks.
model = dict(
    type='IPAdapter',
    pretrained_model_name_or_path='stabilityai/stable-diffusion-3.5-large',
    family=dict(type='SD3'),
    image_encoder=dict(
        type='SiglipImageEncoder',
        pretrained_model_name_or_path='google/siglip-so400m-patch14-384',
        subfolder=None,
    ),
    image_projection=dict(
        type='IPAdapterTimeImageProjection',
        hidden_dims=1280,
        num_tokens=64,
        timestep_in_dim=320,
    ),
    text_drop_rate=0.05,
    image_drop_rate=0.05,
    both_drop_rate=0.05,
)
