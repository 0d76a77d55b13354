"""Architectures buildable from config alone: no download, random init.

A *base family* describes a diffusers Stable Diffusion folder: its pipeline
class and one config per component (unet, vae, text encoder(s), tokenizer(s),
scheduler); an *image-encoder family* describes a
``CLIPVisionModelWithProjection``. The tiny families train in seconds on a CPU
(tests, the offline demo); the full-size ones have the real models' shapes and
FLOPs (parameter counts, benchmarks).

Use one as a model source with ``random:<name>`` (see :mod:`.model_sources`), or
write it as a local folder with :func:`write_family` so that the tiny default
goes through the same ``from_pretrained`` code as real weights.
"""
import os.path as osp
from typing import Any

from ..registry import FAMILIES

__all__ = [
    'build_family_component', 'build_tiny_tokenizer', 'component_class',
    'family_spec', 'write_clip_judge', 'write_family'
]

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
    clip_sample=False)

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
    prediction_type='epsilon')

# The library and class of each component, as in a model_index.json.
COMPONENT_CLASSES = dict(
    unet=('diffusers', 'UNet2DConditionModel'),
    vae=('diffusers', 'AutoencoderKL'),
    text_encoder=('transformers', 'CLIPTextModel'),
    text_encoder_2=('transformers', 'CLIPTextModelWithProjection'),
    tokenizer=('transformers', 'CLIPTokenizer'),
    tokenizer_2=('transformers', 'CLIPTokenizer'),
    image_encoder=('transformers', 'CLIPVisionModelWithProjection'),
    clip=('transformers', 'CLIPModel'))

# Token ids of the tokenizer built by build_tiny_tokenizer().
TINY_BOS, TINY_EOS, TINY_VOCAB = 515, 516, 517


@FAMILIES.register_module(name='sd15')
def sd15() -> dict:
    """Stable Diffusion 1.5: UNet 860M, VAE 84M, CLIP ViT-L/14 text encoder."""
    return dict(
        pipeline='StableDiffusionPipeline',
        unet=dict(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D',
                              'CrossAttnDownBlock2D', 'DownBlock2D'),
            up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D',
                            'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
            cross_attention_dim=768,
            attention_head_dim=8),
        vae=dict(
            in_channels=3,
            out_channels=3,
            down_block_types=('DownEncoderBlock2D', ) * 4,
            up_block_types=('UpDecoderBlock2D', ) * 4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=4,
            sample_size=512),
        text_encoder=dict(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act='quick_gelu',
            projection_dim=768,
            bos_token_id=TINY_BOS,
            eos_token_id=TINY_EOS,
            pad_token_id=TINY_EOS),
        tokenizer=dict(),
        scheduler=SD15_SCHEDULER)


@FAMILIES.register_module(name='mid_sd15')
def mid_sd15() -> dict:
    """SD1.5 at a quarter of its width (same depth and layout): big enough
    for the encoders' share of a step to resemble SD1.5's, small enough for
    CPU benchmarks."""
    full = sd15()
    return dict(
        full,
        unet=dict(full['unet'], block_out_channels=(80, 160, 320, 320),
                  cross_attention_dim=192, attention_head_dim=4,
                  norm_num_groups=16),
        vae=dict(full['vae'], block_out_channels=(32, 64, 128, 128)),
        text_encoder=dict(full['text_encoder'], hidden_size=192,
                          intermediate_size=768, num_hidden_layers=6,
                          num_attention_heads=4, projection_dim=192))


@FAMILIES.register_module(name='tiny_sd15')
def tiny_sd15() -> dict:
    """SD1.5-shaped, tiny: cross-attention in down, up and mid blocks."""
    return dict(
        pipeline='StableDiffusionPipeline',
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
            norm_num_groups=16),
        vae=dict(
            in_channels=3,
            out_channels=3,
            down_block_types=('DownEncoderBlock2D', ) * 2,
            up_block_types=('UpDecoderBlock2D', ) * 2,
            block_out_channels=(16, 32),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=16,
            sample_size=64),
        text_encoder=dict(
            vocab_size=TINY_VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=TINY_BOS,
            eos_token_id=TINY_EOS,
            pad_token_id=TINY_EOS),
        tokenizer=dict(),
        scheduler=SD15_SCHEDULER)


def _sdxl_text_encoder(hidden: int, intermediate: int, layers: int, heads: int,
                       projection: int, act: str) -> dict:
    return dict(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        hidden_act=act,
        projection_dim=projection,
        bos_token_id=TINY_BOS,
        eos_token_id=TINY_EOS,
        pad_token_id=TINY_EOS)


@FAMILIES.register_module(name='sdxl')
def sdxl() -> dict:
    """Stable Diffusion XL base 1.0: UNet 2.6B, CLIP ViT-L + OpenCLIP bigG text."""
    return dict(
        pipeline='StableDiffusionXLPipeline',
        unet=dict(
            sample_size=128,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280),
            down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D',
                              'CrossAttnDownBlock2D'),
            up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D',
                            'UpBlock2D'),
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type='text_time',
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816),  # 1280 + 6 · 256
        vae=dict(sd15()['vae'], sample_size=1024, scaling_factor=0.13025,
                 force_upcast=True),
        text_encoder=_sdxl_text_encoder(768, 3072, 12, 12, 768, 'quick_gelu'),
        text_encoder_2=_sdxl_text_encoder(1280, 5120, 32, 20, 1280, 'gelu'),
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=SDXL_SCHEDULER)


@FAMILIES.register_module(name='tiny_sdxl')
def tiny_sdxl() -> dict:
    """SDXL-shaped, tiny: two text encoders, text-time embedding, no
    attention at the highest resolution, deeper transformers below."""
    tiny_text = dict(tiny_sd15()['text_encoder'])
    return dict(
        pipeline='StableDiffusionXLPipeline',
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
            norm_num_groups=16),
        vae=dict(tiny_sd15()['vae'], scaling_factor=0.13025, force_upcast=True),
        text_encoder=tiny_text,
        text_encoder_2=tiny_text,
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=SDXL_SCHEDULER)


@FAMILIES.register_module(name='clip-vit-large-patch14')
def clip_vit_large_patch14() -> dict:
    """openai/clip-vit-large-patch14 vision tower: 768-d ``image_embeds``."""
    return dict(image_encoder=dict(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        projection_dim=768,
        hidden_act='quick_gelu'))


@FAMILIES.register_module(name='clip-vit-huge-patch14')
def clip_vit_huge_patch14() -> dict:
    """OpenCLIP ViT-H/14 (h94/IP-Adapter models/image_encoder): 1024-d."""
    return dict(image_encoder=dict(
        hidden_size=1280,
        intermediate_size=5120,
        num_hidden_layers=32,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        projection_dim=1024,
        hidden_act='gelu'))


@FAMILIES.register_module(name='clip-vit-bigg-patch14')
def clip_vit_bigg_patch14() -> dict:
    """OpenCLIP ViT-bigG/14 (h94/IP-Adapter sdxl_models/image_encoder): 1280-d."""
    return dict(image_encoder=dict(
        hidden_size=1664,
        intermediate_size=8192,
        num_hidden_layers=48,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        projection_dim=1280,
        hidden_act='gelu'))


@FAMILIES.register_module(name='mid_clip_vision')
def mid_clip_vision() -> dict:
    """A small ViT/14 for the mid family, costing the same share of a step
    (~9 % of the UNet's forward + backward) as ViT-L/14 does for SD1.5."""
    return dict(image_encoder=dict(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=6,
        num_attention_heads=4,
        image_size=224,
        patch_size=14,
        projection_dim=256,
        hidden_act='gelu'))


@FAMILIES.register_module(name='tiny_clip_vision')
def tiny_clip_vision() -> dict:
    """Tiny CLIP vision tower at the real 224 px input, 16-d embeddings."""
    return dict(image_encoder=dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=224,
        patch_size=32,
        projection_dim=16))


@FAMILIES.register_module(name='tiny_clip')
def tiny_clip() -> dict:
    """A tiny full CLIP model (text + vision towers), to judge generated
    images in tests the way openai/clip-vit-large-patch14 does for real."""
    return dict(clip=dict(
        text_config=tiny_sd15()['text_encoder'],
        vision_config=tiny_clip_vision()['image_encoder'],
        projection_dim=16))


def _bytes_to_unicode() -> list[str]:
    """The 256 printable characters CLIP's byte-level BPE maps bytes to."""
    printable = (list(range(ord('!'), ord('~') + 1)) +
                 list(range(ord('¡'), ord('¬') + 1)) +
                 list(range(ord('®'), ord('ÿ') + 1)))
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def build_tiny_tokenizer() -> Any:
    """A CLIP tokenizer that needs no download: bytes, their word-final forms,
    three merges and the two special tokens (517 ids)."""
    from transformers import CLIPTokenizer

    chars = _bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + '</w>': len(chars) + i for i, c in enumerate(chars)})
    merges = [('t', 'h'), ('th', 'e</w>'), ('a', 'n')]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab['<|startoftext|>'] = len(vocab)
    vocab['<|endoftext|>'] = len(vocab)
    assert (vocab['<|startoftext|>'], len(vocab)) == (TINY_BOS, TINY_VOCAB)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def family_spec(family: str) -> dict:
    """The component configs of a registered family."""
    spec = FAMILIES.get(family)
    if spec is None:
        raise KeyError(f'unknown model family {family!r}; registered: '
                       f'{sorted(FAMILIES.module_dict)}')
    return spec()


def component_class(name: str, config: dict) -> type:
    """The class of a family component, as a model_index.json would name it."""
    import importlib
    if name == 'scheduler':
        return getattr(importlib.import_module('diffusers'),
                       config['_class_name'])
    library, cls = COMPONENT_CLASSES[name]
    return getattr(importlib.import_module(library), cls)


def build_family_component(family: str, component: str,
                           cls: type | None = None, seed: int = 0) -> Any:
    """Build ``component`` of a registered family (as ``cls`` if given).

    Weights are random, drawn from a generator seeded by ``seed`` so the same
    family always has the same weights.
    """
    import torch

    configs = family_spec(family)
    if component not in configs:
        raise KeyError(f'model family {family!r} has no {component!r}; it has '
                       f'{sorted(k for k in configs if k != "pipeline")}')
    config = dict(configs[component])
    cls = cls or component_class(component, config)
    if component.startswith('tokenizer'):
        return build_tiny_tokenizer()
    if component == 'scheduler':
        return cls.from_config(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hasattr(cls, 'config_class'):  # transformers
            return cls(cls.config_class(**config)).eval()
        return cls.from_config(config).eval()  # diffusers


def write_family(base: str, image_encoder: str, out_dir: str,
                 seed: int = 0) -> tuple[str, str]:
    """Write a base family as a diffusers folder, with the image encoder in it.

    Returns ``(base_folder, image_encoder_folder)``: ``<out_dir>/<base>`` holds
    ``model_index.json`` and one subfolder per component, plus
    feature_extractor/ (like the published SD1.5 / SDXL folders), and its
    ``image_encoder/`` subfolder holds a ``CLIPVisionModelWithProjection`` with
    its ``preprocessor_config.json`` (like h94/IP-Adapter's image_encoder).
    """
    import inspect

    import diffusers
    from transformers import CLIPImageProcessor

    base_dir = osp.join(out_dir, base)
    encoder_dir = osp.join(base_dir, 'image_encoder')
    encoder = build_family_component(image_encoder, 'image_encoder', seed=seed)
    size = encoder.config.image_size
    processor = CLIPImageProcessor(size=size, crop_size=size)

    spec = family_spec(base)
    pipeline_class = getattr(diffusers, spec['pipeline'])
    components = {
        name: build_family_component(base, name, seed=seed)
        for name in spec if name != 'pipeline'
    }
    optional = dict(
        safety_checker=None,
        feature_extractor=processor,
        image_encoder=None,
        requires_safety_checker=False)
    accepted = inspect.signature(pipeline_class).parameters
    components.update({k: v for k, v in optional.items() if k in accepted})
    pipe = pipeline_class(**components)
    pipe.save_pretrained(base_dir, safe_serialization=True)
    encoder.save_pretrained(encoder_dir, safe_serialization=True)
    processor.save_pretrained(encoder_dir)
    return base_dir, encoder_dir


def write_clip_judge(family: str, out_dir: str, seed: int = 0) -> str:
    """Write a CLIP family as a ``CLIPModel`` + ``CLIPProcessor`` folder."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    folder = osp.join(out_dir, family)
    model = build_family_component(family, 'clip', seed=seed)
    size = model.config.vision_config.image_size
    model.save_pretrained(folder, safe_serialization=True)
    CLIPProcessor(
        image_processor=CLIPImageProcessor(size=size, crop_size=size),
        tokenizer=build_tiny_tokenizer()).save_pretrained(folder)
    return folder
