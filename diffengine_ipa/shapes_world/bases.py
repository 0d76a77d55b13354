"""The tiny bases of the shapes world: one per family, pretrained on it.

Every part is a config here. :mod:`.pretrain` trains the parts that learn
(the VAEs, the image encoders, the denoisers) from scratch on the world's
captioned images; the text encoders stay random and frozen. The trained
parts ship under :data:`SHIPPED` (fp16, one ``from_pretrained`` folder each,
the text encoders fp32), written by ``tools/pretrain_shapes_bases.py``.
:func:`install_bases` lays them out as one diffusers folder per family::

    <out>/sd15  StableDiffusionPipeline      4-channel VAE, CLIP text
    <out>/sdxl  StableDiffusionXLPipeline    4-channel VAE, two CLIP texts
    <out>/sd35  StableDiffusion3Pipeline     16-channel VAE, two CLIPs + T5
    <out>/flux  FluxPipeline                 16-channel VAE, CLIP + T5
    <out>/chroma        ChromaPipeline       T5 only
    <out>/flux_kontext  FluxKontextPipeline  FLUX.1's parts, its transformer
                                             fine-tuned to recolour an input
    <out>/qwen_image    QwenImagePipeline    its own 3D VAE, Qwen2.5-VL text

each with ``image_encoder/`` (a CLIP vision tower with projection; SigLIP
for SD3.5), trained briefly on the world's colour and shape labels, and its
preprocessor config; all weights fp32 once installed.
"""

import copy
import os
import os.path as osp
from typing import Any

from ..kit_files import kit_path
from ..models.families.flux import FLUX_SCHEDULER
from ..models.families.qwen_image import QWEN_IMAGE_SCHEDULER, tiny_qwen_image
from ..models.families.sd3 import SD3_SCHEDULER
from ..models.families.sd15 import SD15_SCHEDULER
from ..models.families.sdxl import SDXL_SCHEDULER
from ..models.random_models.tokenizers import (
    build_tiny_qwen_tokenizer,
    build_tiny_t5_tokenizer,
    bytes_to_unicode,
)
from . import world

__all__ = [
    'FAMILIES',
    'PARTS',
    'SHIPPED',
    'MAX_SEQUENCE_LENGTH',
    'build_part',
    'build_clip_tokenizer',
    'build_t5_tokenizer',
    'family_components',
    'install_bases',
    'load_part',
    'save_part',
]


SHIPPED = kit_path('data', 'shapes_world', 'bases')
# T5 tokens the DiT bases were trained with: pass it when generating.
MAX_SEQUENCE_LENGTH = 16
_WORDS = ('a', *world.HUES, *world.SHAPES)

# --- tokenizers ---------------------------------------------------------------


def _word_merges() -> list[tuple[str, str]]:
    """BPE merges that build each world word whole, left to right."""
    merges = []  # longest words first: their pairs outrank shorter words'
    for word in sorted(_WORDS, key=len, reverse=True):
        symbols = list(word[:-1]) + [word[-1] + '</w>']
        piece = symbols[0]
        for symbol in symbols[1:]:
            if (piece, symbol) not in merges:
                merges.append((piece, symbol))
            piece += symbol
    return merges


def build_clip_tokenizer() -> Any:
    """A CLIP byte-level BPE whose vocabulary holds each world word as one
    token (bytes, word-final bytes, the words' merges, the special tokens)."""
    from transformers import CLIPTokenizer

    chars = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + '</w>': len(chars) + i for i, c in enumerate(chars)})
    merges = _word_merges()
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab['<|startoftext|>'] = len(vocab)
    vocab['<|endoftext|>'] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def build_t5_tokenizer() -> Any:
    """A T5 Unigram tokenizer: printable ASCII, with and without a word
    start, and each world word as one piece."""
    return build_tiny_t5_tokenizer(words=tuple(w for w in _WORDS if len(w) > 1))


# --- the parts ----------------------------------------------------------------


def _clip_text(projection: int = 32) -> dict:
    vocab = len(build_clip_tokenizer())
    return dict(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act='quick_gelu',
        projection_dim=projection,
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )


LATENT_CHANNELS = 8
# 32 px → 8 × 8 × 8 latents: small enough for the denoisers to train on two
# CPU cores in minutes, even (FLUX packs 2 × 2 patches).
VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=('DownEncoderBlock2D',) * 3,
    up_block_types=('UpDecoderBlock2D',) * 3,
    block_out_channels=(16, 32, 64),
    layers_per_block=1,
    latent_channels=LATENT_CHANNELS,
    norm_num_groups=8,
    mid_block_add_attention=False,
    sample_size=world.DEFAULT_SIZE,
)

_UNET = dict(
    sample_size=8,
    in_channels=LATENT_CHANNELS,
    out_channels=LATENT_CHANNELS,
    layers_per_block=1,
    block_out_channels=(32, 64),
    norm_num_groups=16,
    attention_head_dim=2,
)  # diffusers' name: 2 heads

# name -> (library, class, config); the VAE's scale and shift are set by its
# pretraining from its latents' statistics.
PARTS: dict[str, tuple[str, str, dict]] = dict(
    vae=('diffusers', 'AutoencoderKL', VAE),
    clip_vision=(
        'transformers',
        'CLIPVisionModelWithProjection',
        dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=world.DEFAULT_SIZE,
            patch_size=4,
            projection_dim=64,
            hidden_act='quick_gelu',
        ),
    ),
    siglip_vision=(
        'transformers',
        'SiglipVisionModel',
        dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=world.DEFAULT_SIZE,
            patch_size=4,
        ),
    ),
    clip_text=('transformers', 'CLIPTextModel', _clip_text()),
    clip_text_proj=('transformers', 'CLIPTextModelWithProjection', _clip_text()),
    clip_text_proj_2=('transformers', 'CLIPTextModelWithProjection', _clip_text()),
    t5=(
        'transformers',
        'T5EncoderModel',
        dict(
            vocab_size=len(build_t5_tokenizer()),
            d_model=64,
            d_ff=128,
            d_kv=16,
            num_heads=4,
            num_layers=2,
            relative_attention_num_buckets=8,
        ),
    ),
    sd15_unet=(
        'diffusers',
        'UNet2DConditionModel',
        dict(
            _UNET,
            cross_attention_dim=32,
            down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'),
            up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
        ),
    ),
    sdxl_unet=(
        'diffusers',
        'UNet2DConditionModel',
        dict(
            _UNET,
            cross_attention_dim=64,  # 32 + 32: both text encoders
            use_linear_projection=True,
            transformer_layers_per_block=(1, 1),
            down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
            up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'),
            addition_embed_type='text_time',
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=80,
        ),
    ),  # 32 + 6 · 8
    sd35_transformer=(
        'diffusers',
        'SD3Transformer2DModel',
        dict(
            sample_size=8,
            patch_size=2,
            in_channels=LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            num_layers=3,
            attention_head_dim=32,
            num_attention_heads=2,
            joint_attention_dim=64,  # T5's width (≥ the CLIP states' 32 + 32)
            caption_projection_dim=64,
            pooled_projection_dim=64,
            pos_embed_max_size=8,
            qk_norm='rms_norm',
        ),
    ),
    flux_transformer=(
        'diffusers',
        'FluxTransformer2DModel',
        dict(
            patch_size=1,
            in_channels=4 * LATENT_CHANNELS,  # packed 2 × 2
            num_layers=2,
            num_single_layers=2,
            attention_head_dim=32,
            num_attention_heads=2,
            joint_attention_dim=64,
            pooled_projection_dim=32,
            guidance_embeds=True,
            axes_dims_rope=(8, 12, 12),
        ),
    ),
)


def _qwen_text() -> dict:
    """The tiny Qwen-Image family's 2-layer Qwen2.5-VL (its vision tower
    never runs for text), 64 wide like the other text encoders here; random
    and frozen, with that family's tokenizer."""
    config = copy.deepcopy(tiny_qwen_image()['text_encoder'])
    text = config['text_config']
    text.update(hidden_size=64, intermediate_size=128)
    text['rope_parameters']['mrope_section'] = [4, 6, 6]  # half the head width
    config['vision_config']['out_hidden_size'] = 64
    return config


_FLUX_PARTS = dict(
    vae='vae',
    text_encoder='clip_text',
    text_encoder_2='t5',
    tokenizer='clip_tokenizer',
    tokenizer_2='t5_tokenizer',
)
PARTS.update(
    chroma_transformer=(
        'diffusers',
        'ChromaTransformer2DModel',
        dict(
            patch_size=1,
            in_channels=4 * LATENT_CHANNELS,  # packed 2 × 2
            num_layers=2,
            num_single_layers=2,
            attention_head_dim=32,
            num_attention_heads=2,
            joint_attention_dim=64,  # T5's width
            axes_dims_rope=(8, 12, 12),
            approximator_num_channels=32,
            approximator_hidden_dim=64,
            approximator_layers=2,
        ),
    ),
    # FLUX.1's transformer, fine-tuned from it (tools/pretrain_shapes_bases.py)
    flux_kontext_transformer=PARTS['flux_transformer'],
    # Qwen-Image's own 3D VAE: one frame, 4× down (32 px → 8 × 8 × 8); its
    # latents_mean/std set by its pretraining from its latents' statistics.
    qwen_vae=(
        'diffusers',
        'AutoencoderKLQwenImage',
        dict(
            base_dim=16,
            z_dim=LATENT_CHANNELS,
            dim_mult=[1, 2, 4],
            num_res_blocks=1,
            temperal_downsample=[False, False],
            latents_mean=[0.0] * LATENT_CHANNELS,
            latents_std=[1.0] * LATENT_CHANNELS,
        ),
    ),
    qwen_text=('transformers', 'Qwen2_5_VLForConditionalGeneration', _qwen_text()),
    qwen_image_transformer=(
        'diffusers',
        'QwenImageTransformer2DModel',
        dict(
            patch_size=2,
            in_channels=4 * LATENT_CHANNELS,  # packed 2 × 2
            out_channels=LATENT_CHANNELS,
            num_layers=3,
            attention_head_dim=32,
            num_attention_heads=2,
            joint_attention_dim=64,  # the text encoder's width
            axes_dims_rope=(8, 12, 12),
        ),
    ),
)

# The real models' scheduler configs, as the kit's random architectures keep them.
_SCHEDULERS = dict(
    ddpm=SD15_SCHEDULER,
    euler=SDXL_SCHEDULER,
    sd3=SD3_SCHEDULER,
    flux=FLUX_SCHEDULER,
    qwen=QWEN_IMAGE_SCHEDULER,
)

# family -> pipeline, scheduler, component -> part (or tokenizer).
FAMILIES: dict[str, dict] = dict(
    sd15=dict(
        pipeline='StableDiffusionPipeline',
        scheduler='ddpm',
        image_encoder='clip_vision',
        denoiser='sd15_unet',
        parts=dict(
            unet='sd15_unet',
            vae='vae',
            text_encoder='clip_text',
            tokenizer='clip_tokenizer',
        ),
    ),
    sdxl=dict(
        pipeline='StableDiffusionXLPipeline',
        scheduler='euler',
        image_encoder='clip_vision',
        denoiser='sdxl_unet',
        parts=dict(
            unet='sdxl_unet',
            vae='vae',
            text_encoder='clip_text',
            text_encoder_2='clip_text_proj',
            tokenizer='clip_tokenizer',
            tokenizer_2='clip_tokenizer',
        ),
    ),
    sd35=dict(
        pipeline='StableDiffusion3Pipeline',
        scheduler='sd3',
        image_encoder='siglip_vision',
        denoiser='sd35_transformer',
        parts=dict(
            transformer='sd35_transformer',
            vae='vae',
            text_encoder='clip_text_proj',
            text_encoder_2='clip_text_proj_2',
            text_encoder_3='t5',
            tokenizer='clip_tokenizer',
            tokenizer_2='clip_tokenizer',
            tokenizer_3='t5_tokenizer',
        ),
    ),
    flux=dict(
        pipeline='FluxPipeline',
        scheduler='flux',
        image_encoder='clip_vision',
        denoiser='flux_transformer',
        parts=dict(transformer='flux_transformer', **_FLUX_PARTS),
    ),
    chroma=dict(
        pipeline='ChromaPipeline',
        scheduler='flux',
        image_encoder='clip_vision',
        denoiser='chroma_transformer',
        parts=dict(
            transformer='chroma_transformer',
            vae='vae',
            text_encoder='t5',
            tokenizer='t5_tokenizer',
        ),
    ),
    flux_kontext=dict(
        pipeline='FluxKontextPipeline',
        scheduler='flux',
        image_encoder='clip_vision',
        denoiser='flux_kontext_transformer',
        parts=dict(transformer='flux_kontext_transformer', **_FLUX_PARTS),
    ),
    qwen_image=dict(
        pipeline='QwenImagePipeline',
        scheduler='qwen',
        image_encoder='clip_vision',
        denoiser='qwen_image_transformer',
        parts=dict(
            transformer='qwen_image_transformer',
            vae='qwen_vae',
            text_encoder='qwen_text',
            tokenizer='qwen_tokenizer',
        ),
    ),
)


def _class(part: str) -> type:
    import importlib

    library, name, _ = PARTS[part]
    return getattr(importlib.import_module(library), name)


def build_part(part: str, seed: int = 0, **overrides) -> Any:
    """A part of :data:`PARTS` with random weights drawn from ``seed``."""
    import torch

    cls = _class(part)
    config = dict(PARTS[part][2], **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hasattr(cls, 'config_class'):  # transformers
            return cls(cls.config_class(**config)).eval()
        return cls.from_config(config).eval()


def save_part(model: Any, part: str, root: str = SHIPPED, half: bool = True) -> str:
    """Write a part as a ``from_pretrained`` folder (fp16 unless ``half`` is
    False), replacing what was there."""
    import shutil

    import torch

    folder = osp.join(root, part)
    shutil.rmtree(folder, ignore_errors=True)
    stored = copy.deepcopy(model).to(torch.float16 if half else torch.float32)
    stored.save_pretrained(folder, safe_serialization=True)
    return folder


def load_part(part: str, root: str = SHIPPED) -> Any:
    """A part as written by :func:`save_part`, in fp32."""
    import torch

    cls = _class(part)
    folder = osp.join(root, part)
    if not osp.isdir(folder):
        from ..errors import UserError

        raise UserError(
            f'{folder}: no pretrained {part!r}; run python '
            'tools/pretrain_shapes_bases.py (see docs/shapes_world.md)'
        )
    key = 'dtype' if hasattr(cls, 'config_class') else 'torch_dtype'
    return cls.from_pretrained(folder, **{key: torch.float32}).eval()


def image_processor(part: str) -> Any:
    """The preprocessor of an image encoder part, at the world's size."""
    size = world.DEFAULT_SIZE
    if part == 'siglip_vision':
        from transformers import SiglipImageProcessor

        return SiglipImageProcessor(size=dict(height=size, width=size))
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size=dict(shortest_edge=size), crop_size=dict(height=size, width=size)
    )


def family_components(
    family: str, root: str = SHIPPED, denoiser: bool = True
) -> dict[str, Any]:
    """A family's pipeline components (no image encoder), as shipped under
    ``root``; without the denoiser unless ``denoiser``."""
    import diffusers

    spec = FAMILIES[family]
    components = {}
    for name, part in spec['parts'].items():
        if part == spec['denoiser'] and not denoiser:
            continue
        if part == 'clip_tokenizer':
            components[name] = build_clip_tokenizer()
        elif part == 't5_tokenizer':
            components[name] = build_t5_tokenizer()
        elif part == 'qwen_tokenizer':
            components[name] = build_tiny_qwen_tokenizer()
        else:
            components[name] = load_part(part, root)
    config = dict(_SCHEDULERS[spec['scheduler']])
    scheduler = getattr(diffusers, config.pop('_class_name'))
    components['scheduler'] = scheduler.from_config(config)
    return components


def install_bases(
    out_dir: str = 'work_dirs/shapes_world',
    root: str = SHIPPED,
    families: tuple[str, ...] = tuple(FAMILIES),
) -> list[str]:
    """Lay the shipped bases out as diffusers folders ``<out_dir>/<family>``.

    A folder whose ``model_index.json`` exists is kept as it is.

    Returns:
        The family folders.
    """
    import inspect

    import diffusers

    from ..models.generation import pipeline_extras

    written = []
    for family in families:
        spec = FAMILIES[family]
        folder = osp.join(out_dir, family)
        written.append(folder)
        if osp.exists(osp.join(folder, 'model_index.json')):
            continue
        pipeline_class = getattr(diffusers, spec['pipeline'])
        components = family_components(family, root)
        encoder = load_part(spec['image_encoder'], root)
        processor = image_processor(spec['image_encoder'])
        accepted = inspect.signature(pipeline_class).parameters
        optional = dict(
            pipeline_extras(pipeline_class), image_encoder=None, feature_extractor=None
        )
        if 'unet' in components:  # SD1.5 / SDXL folders ship one
            optional['feature_extractor'] = processor
        components.update({k: v for k, v in optional.items() if k in accepted})
        tmp = folder + '.tmp'
        pipeline_class(**components).save_pretrained(tmp, safe_serialization=True)
        encoder.save_pretrained(osp.join(tmp, 'image_encoder'), safe_serialization=True)
        processor.save_pretrained(osp.join(tmp, 'image_encoder'))
        os.replace(tmp, folder)
    return written
