"""Build registered architectures (random weights), or write them as folders
that the real ``from_pretrained`` code loads."""

import os.path as osp
from typing import Any

from .architectures import architecture_spec
from .tokenizers import (
    build_tiny_clip_tokenizer,
    build_tiny_qwen_tokenizer,
    build_tiny_t5_tokenizer,
)

__all__ = [
    'build_component',
    'build_pipeline',
    'component_class',
    'write_base_model',
    'write_image_encoder',
    'write_clip_judge',
]


def component_class(architecture: str, component: str) -> type:
    """The class of a component, as the architecture's family or encoder
    type declares it (a scheduler's from its ``_class_name``)."""
    import importlib

    from ...registry import MODELS

    spec = architecture_spec(architecture)
    if component == 'scheduler':
        library, name = 'diffusers', spec['scheduler']['_class_name']
    elif component == 'clip':
        library, name = 'transformers', 'CLIPModel'
    elif 'encoder' in spec:
        library, name = 'transformers', MODELS.get(spec['encoder']).model_class
    else:
        library, name = MODELS.get(spec['family']).components[component]
    return getattr(importlib.import_module(library), name)


def build_component(
    architecture: str, component: str, cls: type | None = None, seed: int = 0
) -> Any:
    """``component`` of a registered architecture (as ``cls`` if given).

    Weights are random, drawn from a generator seeded by ``seed`` so the same
    architecture always has the same weights.
    """
    import torch

    spec = architecture_spec(architecture)
    if component not in spec:
        raise KeyError(f'architecture {architecture!r} has no {component!r}')
    config = dict(spec[component])
    cls = cls or component_class(architecture, component)
    if component.startswith('tokenizer'):  # a real class, vocabulary built here
        if 'Qwen2' in cls.__name__:
            return build_tiny_qwen_tokenizer()
        return (
            build_tiny_t5_tokenizer()
            if 'T5' in cls.__name__
            else build_tiny_clip_tokenizer()
        )
    if component == 'scheduler':
        return cls.from_config(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hasattr(cls, 'config_class'):  # transformers
            return cls(cls.config_class(**config)).eval()
        return cls.from_config(config).eval()  # diffusers


def build_pipeline(
    architecture: str, pipeline_class: type, dtype: Any = None, seed: int = 0
) -> Any:
    """A base architecture as its family's diffusers pipeline (no image
    encoder), the weights in ``dtype`` (default: fp32), built in memory."""
    import torch

    from ...registry import MODELS
    from ..generation import make_pipeline

    family = MODELS.get(architecture_spec(architecture)['family'])
    components = {
        name: build_component(architecture, name, seed=seed)
        for name in (*family.components, 'scheduler')
    }
    if dtype is not None:
        for part in components.values():
            if isinstance(part, torch.nn.Module):
                part.to(dtype)
    return make_pipeline(
        pipeline_class, dict(components, image_encoder=None, feature_extractor=None)
    )


def write_image_encoder(architecture: str, folder: str, seed: int = 0) -> str:
    """An image-encoder architecture as a model folder with its
    ``preprocessor_config.json`` (like google/siglip-so400m-patch14-384)."""
    encoder = build_component(architecture, 'image_encoder', seed=seed)
    encoder.save_pretrained(folder, safe_serialization=True)
    _processor(architecture).save_pretrained(folder)
    return folder


def write_base_model(
    architecture: str, out_dir: str, seed: int = 0, image_encoder: str | None = None
) -> tuple[str, str]:
    """Write a base architecture as a diffusers folder, with an image encoder.

    Returns ``(base_folder, image_encoder_folder)``: ``<out_dir>/<name>``
    holds ``model_index.json`` and one subfolder per component (plus, for the
    UNet families, ``feature_extractor/`` like the published SD1.5 / SDXL
    folders); its ``image_encoder/`` holds the paired image encoder
    (``image_encoder`` overrides it) with its preprocessor config.
    """
    import inspect

    import diffusers

    from ...registry import MODELS
    from ..generation import pipeline_extras

    spec = architecture_spec(architecture)
    base_dir = osp.join(out_dir, architecture)
    encoder_dir = write_image_encoder(
        image_encoder or spec['paired_encoder'],
        osp.join(base_dir, 'image_encoder'),
        seed,
    )
    family = MODELS.get(spec['family'])
    pipeline_class = getattr(diffusers, family.generation.pipeline_class)
    components = {
        name: build_component(architecture, name, seed=seed)
        for name in (*family.components, 'scheduler')
    }
    accepted = inspect.signature(pipeline_class).parameters
    optional = dict(
        pipeline_extras(pipeline_class), image_encoder=None, feature_extractor=None
    )
    if family.denoiser_name == 'unet':  # SD1.5 / SDXL folders ship one
        optional['feature_extractor'] = _processor(spec['paired_encoder'])
    components.update({k: v for k, v in optional.items() if k in accepted})
    pipeline_class(**components).save_pretrained(base_dir, safe_serialization=True)
    return base_dir, encoder_dir


def write_clip_judge(architecture: str, out_dir: str, seed: int = 0) -> str:
    """Write a CLIP architecture as a ``CLIPModel`` + ``CLIPProcessor`` folder."""
    from transformers import CLIPProcessor

    folder = osp.join(out_dir, architecture)
    build_component(architecture, 'clip', seed=seed).save_pretrained(
        folder, safe_serialization=True
    )
    CLIPProcessor(
        image_processor=_processor(architecture), tokenizer=build_tiny_clip_tokenizer()
    ).save_pretrained(folder)
    return folder


def _processor(architecture: str) -> Any:
    """The image processor an architecture's spec describes."""
    from ...registry import MODELS

    spec = architecture_spec(architecture)
    encoder = MODELS.get(spec.get('encoder', 'CLIPImageEncoder'))
    return encoder.load_processor(f'random:{architecture}')
