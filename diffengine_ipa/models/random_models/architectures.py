"""Architectures buildable from config alone: no download, random weights.

A *base* architecture names its model family (``family='SD15'``, the
registered component whose ``components`` table gives each part's class) and
holds one config per component, the scheduler's included; it names the image
encoder it is paired with and its training resolution. An *image-encoder*
architecture names its encoder type (``encoder='CLIPImageEncoder'``) and
holds the vision model's config and its preprocessor's settings.

The tiny ones train in seconds on a CPU (tests, the offline demo); the
full-size ones have the real models' shapes and FLOPs (parameter counts on the
meta device, benchmarks). Use one as a model source with ``random:<name>``,
or write it as a local folder (:mod:`.writers`) so that the tiny default goes
through the same ``from_pretrained`` code as real weights.
"""

from ...registry import ARCHITECTURES
from .tokenizers import TINY_BOS, TINY_EOS, TINY_VOCAB

__all__ = ['architecture_spec', 'base_architectures']

# The SD1.5 scheduler config (stable-diffusion-v1-5, scheduler/).
SD15_SCHEDULER = dict(
    _class_name='PNDMScheduler',
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule='scaled_linear',
    num_train_timesteps=1000,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    steps_offset=1,
    clip_sample=False,
)

# The SDXL scheduler config (stable-diffusion-xl-base-1.0, scheduler/).
SDXL_SCHEDULER = dict(
    _class_name='EulerDiscreteScheduler',
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule='scaled_linear',
    num_train_timesteps=1000,
    steps_offset=1,
    timestep_spacing='leading',
    interpolation_type='linear',
    use_karras_sigmas=False,
    prediction_type='epsilon',
)

# stable-diffusion-3.5-large, scheduler/.
SD3_SCHEDULER = dict(
    _class_name='FlowMatchEulerDiscreteScheduler', num_train_timesteps=1000, shift=3.0
)

# FLUX.1-dev, scheduler/: the shift follows the image size at inference.
FLUX_SCHEDULER = dict(
    _class_name='FlowMatchEulerDiscreteScheduler',
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)


def architecture_spec(name: str) -> dict:
    """The component configs of a registered architecture."""
    spec = ARCHITECTURES.get(name)
    if spec is None:
        raise KeyError(
            f'unknown architecture {name!r}; registered: '
            f'{sorted(ARCHITECTURES.module_dict)}'
        )
    return spec()


def base_architectures() -> list[str]:
    """The base architectures (those naming a model family)."""
    return sorted(
        name
        for name in ARCHITECTURES.module_dict
        if 'family' in architecture_spec(name)
    )


def _clip_text(
    hidden: int,
    intermediate: int,
    layers: int,
    heads: int,
    projection: int,
    act: str = 'quick_gelu',
    vocab: int = 49408,
) -> dict:
    return dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        hidden_act=act,
        projection_dim=projection,
        bos_token_id=TINY_BOS,
        eos_token_id=TINY_EOS,
        pad_token_id=TINY_EOS,
    )


def _vae(
    block_out_channels: tuple,
    latent_channels: int = 4,
    norm_num_groups: int = 32,
    **extra,
) -> dict:
    blocks = len(block_out_channels)
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=('DownEncoderBlock2D',) * blocks,
        up_block_types=('UpDecoderBlock2D',) * blocks,
        block_out_channels=block_out_channels,
        layers_per_block=2 if blocks == 4 else 1,
        latent_channels=latent_channels,
        norm_num_groups=norm_num_groups,
        **extra,
    )


# The VAE of the DiT families: 16 channels, a shift, no quant convs.
SD3_VAE = dict(
    latent_channels=16,
    shift_factor=0.0609,
    scaling_factor=1.5305,
    use_quant_conv=False,
    use_post_quant_conv=False,
    force_upcast=True,
    sample_size=1024,
)
FLUX_VAE = dict(SD3_VAE, shift_factor=0.1159, scaling_factor=0.3611)
# Google's T5 v1.1 XXL encoder, as SD3.5 and FLUX.1 ship it.
T5_XXL = dict(
    vocab_size=32128,
    d_model=4096,
    d_ff=10240,
    d_kv=64,
    num_heads=64,
    num_layers=24,
    feed_forward_proj='gated-gelu',
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
)
TINY_CLIP_TEXT = _clip_text(32, 64, 2, 4, 32, act='quick_gelu', vocab=TINY_VOCAB)


def _tiny_t5(width: int) -> dict:
    return dict(
        vocab_size=200,
        d_model=width,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        relative_attention_num_buckets=8,
    )


# --- Stable Diffusion 1.5 -----------------------------------------------------


@ARCHITECTURES.register_module(name='sd15')
def sd15() -> dict:
    """Stable Diffusion 1.5: UNet 860M, VAE 84M, CLIP ViT-L/14 text encoder."""
    return dict(
        family='SD15',
        paired_encoder='clip-vit-large-patch14',
        resolution=512,
        unet=dict(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=(
                'CrossAttnDownBlock2D',
                'CrossAttnDownBlock2D',
                'CrossAttnDownBlock2D',
                'DownBlock2D',
            ),
            up_block_types=(
                'UpBlock2D',
                'CrossAttnUpBlock2D',
                'CrossAttnUpBlock2D',
                'CrossAttnUpBlock2D',
            ),
            cross_attention_dim=768,
            attention_head_dim=8,
        ),
        vae=_vae((128, 256, 512, 512), sample_size=512),
        text_encoder=_clip_text(768, 3072, 12, 12, 768),
        tokenizer=dict(),
        scheduler=SD15_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='mid_sd15')
def mid_sd15() -> dict:
    """SD1.5 at a quarter of its width (same depth and layout): big enough
    for the encoders' share of a step to resemble SD1.5's, small enough for
    CPU benchmarks."""
    full = sd15()
    return dict(
        full,
        paired_encoder='mid_clip_vision',
        resolution=256,
        unet=dict(
            full['unet'],
            block_out_channels=(80, 160, 320, 320),
            cross_attention_dim=192,
            attention_head_dim=4,
            norm_num_groups=16,
        ),
        vae=dict(full['vae'], block_out_channels=(32, 64, 128, 128)),
        text_encoder=dict(
            full['text_encoder'],
            hidden_size=192,
            intermediate_size=768,
            num_hidden_layers=6,
            num_attention_heads=4,
            projection_dim=192,
        ),
    )


@ARCHITECTURES.register_module(name='tiny_sd15')
def tiny_sd15() -> dict:
    """SD1.5-shaped, tiny: cross-attention in down, up and mid blocks."""
    return dict(
        family='SD15',
        paired_encoder='tiny_clip_vision',
        resolution=64,
        unet=dict(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'),
            up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
            cross_attention_dim=32,
            attention_head_dim=4,
            norm_num_groups=16,
        ),
        vae=_vae((16, 32), norm_num_groups=16, sample_size=64),
        text_encoder=TINY_CLIP_TEXT,
        tokenizer=dict(),
        scheduler=SD15_SCHEDULER,
    )


# --- Stable Diffusion XL ------------------------------------------------------


@ARCHITECTURES.register_module(name='sdxl')
def sdxl() -> dict:
    """Stable Diffusion XL base 1.0: UNet 2.6B, CLIP ViT-L + OpenCLIP bigG text."""
    return dict(
        family='SDXL',
        paired_encoder='clip-vit-bigg-patch14',
        resolution=1024,
        unet=dict(
            sample_size=128,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280),
            down_block_types=(
                'DownBlock2D',
                'CrossAttnDownBlock2D',
                'CrossAttnDownBlock2D',
            ),
            up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'),
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type='text_time',
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        ),  # 1280 + 6 · 256
        vae=dict(
            sd15()['vae'], sample_size=1024, scaling_factor=0.13025, force_upcast=True
        ),
        text_encoder=_clip_text(768, 3072, 12, 12, 768),
        text_encoder_2=_clip_text(1280, 5120, 32, 20, 1280, 'gelu'),
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=SDXL_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='tiny_sdxl')
def tiny_sdxl() -> dict:
    """SDXL-shaped, tiny: two text encoders, text-time embedding, no
    attention at the highest resolution, deeper transformers below."""
    return dict(
        family='SDXL',
        paired_encoder='tiny_clip_vision',
        resolution=64,
        unet=dict(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
            up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'),
            transformer_layers_per_block=(1, 2),
            attention_head_dim=(2, 4),
            cross_attention_dim=64,  # 32 + 32: both text encoders
            use_linear_projection=True,
            addition_embed_type='text_time',
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=80,  # 32 + 6 · 8
            norm_num_groups=16,
        ),
        vae=dict(tiny_sd15()['vae'], scaling_factor=0.13025, force_upcast=True),
        text_encoder=TINY_CLIP_TEXT,
        text_encoder_2=TINY_CLIP_TEXT,
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=SDXL_SCHEDULER,
    )


# --- Stable Diffusion 3.5 -----------------------------------------------------


@ARCHITECTURES.register_module(name='sd35_large')
def sd35_large() -> dict:
    """Stable Diffusion 3.5 Large: MMDiT 8.1B (38 blocks of 2432), CLIP-L,
    CLIP-G and T5-XXL text encoders, 16-channel VAE."""
    return dict(
        family='SD3',
        paired_encoder='siglip-so400m-patch14-384',
        resolution=1024,
        transformer=dict(
            sample_size=128,
            patch_size=2,
            in_channels=16,
            num_layers=38,
            attention_head_dim=64,
            num_attention_heads=38,
            joint_attention_dim=4096,
            caption_projection_dim=2432,
            pooled_projection_dim=2048,
            out_channels=16,
            pos_embed_max_size=192,
            qk_norm='rms_norm',
        ),
        vae=_vae((128, 256, 512, 512), **SD3_VAE),
        text_encoder=_clip_text(768, 3072, 12, 12, 768),
        text_encoder_2=_clip_text(1280, 5120, 32, 20, 1280, 'gelu'),
        text_encoder_3=T5_XXL,
        tokenizer=dict(),
        tokenizer_2=dict(),
        tokenizer_3=dict(),
        scheduler=SD3_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='tiny_sd3')
def tiny_sd3() -> dict:
    """SD3-shaped, tiny: joint attention with RMS-normed Q/K, two CLIPs
    (pooled 32 + 32) and a T5 wider than the CLIP states it pads."""
    return dict(
        family='SD3',
        paired_encoder='tiny_siglip_384',
        resolution=64,
        family_settings=dict(max_sequence_length=32),
        # The published Resampler's depth and head width, one head.
        projection=dict(
            type='IPAdapterTimeImageProjection',
            hidden_dims=64,
            num_tokens=16,
            timestep_in_dim=32,
        ),
        transformer=dict(
            sample_size=32,
            patch_size=2,
            in_channels=4,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=4,
            joint_attention_dim=96,  # T5's width
            caption_projection_dim=32,
            pooled_projection_dim=64,  # 32 + 32: both CLIPs' pooled
            out_channels=4,
            pos_embed_max_size=32,
            qk_norm='rms_norm',
        ),
        vae=_vae(
            (16, 32),
            norm_num_groups=16,
            **dict(SD3_VAE, latent_channels=4, sample_size=64),
        ),
        text_encoder=TINY_CLIP_TEXT,
        text_encoder_2=TINY_CLIP_TEXT,
        text_encoder_3=_tiny_t5(96),
        tokenizer=dict(),
        tokenizer_2=dict(),
        tokenizer_3=dict(),
        scheduler=SD3_SCHEDULER,
    )


# --- FLUX.1 -------------------------------------------------------------------


@ARCHITECTURES.register_module(name='flux1_dev')
def flux1_dev() -> dict:
    """FLUX.1 [dev]: 11.9B transformer (19 double-stream, 38 single-stream
    blocks of 3072), guidance embedding, CLIP-L and T5-XXL, 16-channel VAE."""
    return dict(
        family='Flux',
        paired_encoder='clip-vit-large-patch14',
        resolution=1024,
        transformer=dict(
            patch_size=1,
            in_channels=64,
            num_layers=19,
            num_single_layers=38,
            attention_head_dim=128,
            num_attention_heads=24,
            joint_attention_dim=4096,
            pooled_projection_dim=768,
            guidance_embeds=True,
            axes_dims_rope=(16, 56, 56),
        ),
        vae=_vae((128, 256, 512, 512), **FLUX_VAE),
        text_encoder=_clip_text(768, 3072, 12, 12, 768),
        text_encoder_2=T5_XXL,
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=FLUX_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='mid_flux')
def mid_flux() -> dict:
    """FLUX.1 at full width with few blocks (1 double-, 2 single-stream) and
    a 2-layer T5-XXL: every part at its real size per layer, ~0.65B
    transformer parameters (for memory measurements on a CPU)."""
    spec = flux1_dev()
    spec['transformer'] = dict(spec['transformer'], num_layers=1, num_single_layers=2)
    spec['text_encoder_2'] = dict(T5_XXL, num_layers=2)
    spec['resolution'] = 512
    spec['family_settings'] = dict(max_sequence_length=128)
    return spec


@ARCHITECTURES.register_module(name='tiny_flux')
def tiny_flux() -> dict:
    """FLUX.1-shaped, tiny: double- and single-stream blocks, RoPE, guidance
    embedding, 2×2 latent packing."""
    return dict(
        family='Flux',
        paired_encoder='tiny_clip_vision',
        resolution=64,
        family_settings=dict(max_sequence_length=32),
        transformer=dict(
            patch_size=1,
            in_channels=16,  # 4 latent channels, packed 2×2
            num_layers=2,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=48,  # T5's width
            pooled_projection_dim=32,  # CLIP's pooled width
            guidance_embeds=True,
            axes_dims_rope=(4, 6, 6),
        ),
        vae=_vae(
            (16, 32),
            norm_num_groups=16,
            **dict(FLUX_VAE, latent_channels=4, sample_size=64),
        ),
        text_encoder=TINY_CLIP_TEXT,
        text_encoder_2=_tiny_t5(48),
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=FLUX_SCHEDULER,
    )


# --- Image encoders -----------------------------------------------------------


def _clip_vision(
    hidden: int,
    intermediate: int,
    layers: int,
    heads: int,
    image_size: int,
    patch: int,
    projection: int,
    act: str = 'gelu',
) -> dict:
    return dict(
        encoder='CLIPImageEncoder',
        image_encoder=dict(
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            image_size=image_size,
            patch_size=patch,
            projection_dim=projection,
            hidden_act=act,
        ),
        processor=dict(size=image_size, crop_size=image_size),
    )


def _siglip(
    hidden: int, intermediate: int, layers: int, heads: int, image_size: int, patch: int
) -> dict:
    return dict(
        encoder='SiglipImageEncoder',
        image_encoder=dict(
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            image_size=image_size,
            patch_size=patch,
        ),
        processor=dict(size=dict(height=image_size, width=image_size)),
    )


@ARCHITECTURES.register_module(name='clip-vit-large-patch14')
def clip_vit_large_patch14() -> dict:
    """openai/clip-vit-large-patch14 vision tower: 768-d ``image_embeds``."""
    return _clip_vision(1024, 4096, 24, 16, 224, 14, 768, 'quick_gelu')


@ARCHITECTURES.register_module(name='clip-vit-huge-patch14')
def clip_vit_huge_patch14() -> dict:
    """OpenCLIP ViT-H/14 (h94/IP-Adapter models/image_encoder): 1024-d."""
    return _clip_vision(1280, 5120, 32, 16, 224, 14, 1024)


@ARCHITECTURES.register_module(name='clip-vit-bigg-patch14')
def clip_vit_bigg_patch14() -> dict:
    """OpenCLIP ViT-bigG/14 (h94/IP-Adapter sdxl_models/image_encoder): 1280-d."""
    return _clip_vision(1664, 8192, 48, 16, 224, 14, 1280)


@ARCHITECTURES.register_module(name='siglip-so400m-patch14-384')
def siglip_so400m_patch14_384() -> dict:
    """google/siglip-so400m-patch14-384 vision tower (SD3.5's): 729 tokens of
    1152 at 384 px."""
    return _siglip(1152, 4304, 27, 16, 384, 14)


@ARCHITECTURES.register_module(name='mid_clip_vision')
def mid_clip_vision() -> dict:
    """A small ViT/14 for the mid family, costing the same share of a step
    (~9 % of the UNet's forward + backward) as ViT-L/14 does for SD1.5."""
    return _clip_vision(256, 1024, 6, 4, 224, 14, 256)


@ARCHITECTURES.register_module(name='tiny_clip_vision')
def tiny_clip_vision() -> dict:
    """Tiny CLIP vision tower at the real 224 px input, 16-d embeddings."""
    return _clip_vision(32, 64, 2, 4, 224, 32, 16, 'quick_gelu')


@ARCHITECTURES.register_module(name='tiny_clip_vision_32')
def tiny_clip_vision_32() -> dict:
    """Tiny CLIP vision tower reading 32 px images (4 × 4 patches)."""
    return _clip_vision(32, 64, 2, 4, 32, 8, 16, 'quick_gelu')


@ARCHITECTURES.register_module(name='tiny_clip_vision_384')
def tiny_clip_vision_384() -> dict:
    """Tiny CLIP vision tower reading 384 px images (12 × 12 patches)."""
    return _clip_vision(32, 64, 2, 4, 384, 32, 16, 'quick_gelu')


@ARCHITECTURES.register_module(name='tiny_siglip_384')
def tiny_siglip_384() -> dict:
    """Tiny SigLIP vision tower at SD3.5's 384 px (12 × 12 patches)."""
    return _siglip(32, 64, 2, 4, 384, 32)


@ARCHITECTURES.register_module(name='tiny_siglip_32')
def tiny_siglip_32() -> dict:
    """Tiny SigLIP vision tower reading 32 px images (4 × 4 patches)."""
    return _siglip(32, 64, 2, 4, 32, 8)


@ARCHITECTURES.register_module(name='tiny_dinov2_32')
def tiny_dinov2_32() -> dict:
    """Tiny DINOv2 reading 32 px images (4 × 4 patches and a CLS token)."""
    return dict(
        encoder='Dinov2ImageEncoder',
        image_encoder=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            mlp_ratio=2,
            image_size=32,
            patch_size=8,
        ),
        processor=dict(
            size=dict(shortest_edge=36),
            crop_size=dict(height=32, width=32),
            image_mean=(0.485, 0.456, 0.406),
            image_std=(0.229, 0.224, 0.225),
        ),
    )


@ARCHITECTURES.register_module(name='tiny_clip')
def tiny_clip() -> dict:
    """A tiny full CLIP model (text + vision towers), to judge generated
    images in tests the way openai/clip-vit-large-patch14 does for real."""
    return dict(
        clip=dict(
            text_config=TINY_CLIP_TEXT,
            vision_config=tiny_clip_vision()['image_encoder'],
            projection_dim=16,
        ),
        processor=tiny_clip_vision()['processor'],
    )
