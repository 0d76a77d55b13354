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

__all__ = [
    'architecture_spec',
    'base_architectures',
    'clip_text_config',
    'vae_config',
    'tiny_t5_config',
    'T5_XXL',
    'TINY_CLIP_TEXT',
    'DIT_VAE',
]


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


def clip_text_config(
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


def vae_config(
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


# The VAE of the DiT families: 16 channels, a shift, no quant convs
# (SD3.5's numbers; FLUX.1 changes the shift and scale).
DIT_VAE = dict(
    latent_channels=16,
    shift_factor=0.0609,
    scaling_factor=1.5305,
    use_quant_conv=False,
    use_post_quant_conv=False,
    force_upcast=True,
    sample_size=1024,
)
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
TINY_CLIP_TEXT = clip_text_config(32, 64, 2, 4, 32, act='quick_gelu', vocab=TINY_VOCAB)


def tiny_t5_config(width: int) -> dict:
    return dict(
        vocab_size=200,
        d_model=width,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        relative_attention_num_buckets=8,
    )


# --- Image encoders -----------------------------------------------------------


def _vit(
    hidden: int, intermediate: int, layers: int, heads: int, image_size: int, patch: int
) -> dict:
    """A vision transformer's shape, in the names CLIP's and SigLIP's vision
    configs share."""
    return dict(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=patch,
    )


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
            _vit(hidden, intermediate, layers, heads, image_size, patch),
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
        image_encoder=_vit(hidden, intermediate, layers, heads, image_size, patch),
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
