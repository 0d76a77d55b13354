"""Keep resident only the frozen parts a step uses.

A step that reads the embedding cache gets latents, prompt encodings and
image features as tensors: the text encoders, the image encoder and the VAE
encoder do nothing in it. :func:`release_encoders` frees them (after taking
what the model still needs from them: the cache fingerprint, the empty
prompt's encodings, the null image's features); :func:`resident_encoders`
loads the text and image encoders back for a block that generates
(validation, sample images) and frees them again after. Generation never
needs the VAE encoder, so it stays freed.
"""

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .model_sources import load_component

__all__ = [
    'release_encoders',
    'resident_encoders',
    'released_encoders',
    'ReleasedEncoder',
]


class ReleasedEncoder(nn.Module):
    """Where a freed encoder was: keeps its ``config`` (what the adapter's
    metadata reads) and says so when something calls it."""

    def __init__(
        self, name: str, dtype: torch.dtype = torch.float32, config: Any = None
    ) -> None:
        super().__init__()
        self.name = name
        self.freed_dtype = dtype  # what it is loaded back in
        self.config = config

    def forward(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            f'{self.name} was freed (training reads the embedding cache); '
            'wrap the call in models.resident_encoders(model)'
        )


def _text_encoder_names(family: nn.Module) -> list[str]:
    return [name for name in family.components if name.startswith('text_encoder')]


def released_encoders(model: nn.Module) -> list[str]:
    """The names of the model's encoders that are freed now."""
    family = model.family
    names = [
        f'family.{n}'
        for n in _text_encoder_names(family)
        if isinstance(getattr(family, n), ReleasedEncoder)
    ]
    if isinstance(model.image_encoder.model, ReleasedEncoder):
        names.append('image_encoder')
    if isinstance(family.vae.encoder, ReleasedEncoder):
        names.append('family.vae.encoder')
    return names


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def release_encoders(model: nn.Module) -> list[str]:
    """Free the text encoders, the image encoder and the VAE encoder of an
    ``IPAdapter`` that trains from the embedding cache.

    What the model reads from them later (the encoders' fingerprint, the
    empty prompt's encodings, the null image's features) is computed first.

    Returns:
        The names of the freed modules.
    """
    if released_encoders(model):
        return released_encoders(model)
    model.encoder_fingerprint()
    model.empty_prompt_encodings()
    model.null_image_features()
    _release_text_and_image(model)
    vae = model.family.vae
    vae.encoder = _placeholder(vae.encoder, 'family.vae.encoder')
    _free_memory()
    return released_encoders(model)


def _placeholder(module: nn.Module, name: str) -> ReleasedEncoder:
    if isinstance(module, ReleasedEncoder):
        return module
    dtype = next(module.parameters()).dtype
    return ReleasedEncoder(name, dtype, getattr(module, 'config', None))


def _release_text_and_image(model: nn.Module) -> None:
    family = model.family
    for name in _text_encoder_names(family):
        setattr(family, name, _placeholder(getattr(family, name), f'family.{name}'))
    family.__dict__.pop('_text_pipeline', None)  # it holds the encoders
    model.image_encoder.model = _placeholder(model.image_encoder.model, 'image_encoder')


def _reload(model: nn.Module) -> None:
    """Load the released text and image encoders again, as the model built
    them (device, frozen dtype, quantization)."""
    from .families.diffusion_family import component_class
    from .image_encoders import FIELD, _transformers_class
    from .quantization import quantize_parts

    family, encoder = model.family, model.image_encoder
    source = model.sources['pretrained_model_name_or_path']
    device = model.device
    for name in _text_encoder_names(family):
        library, cls = family.components[name]
        dtype = getattr(family, name).freed_dtype
        setattr(
            family,
            name,
            load_component(component_class(library, cls), source, name)
            .requires_grad_(False)
            .to(device=device, dtype=dtype),
        )
    dtype = encoder.model.freed_dtype
    encoder.model = (
        load_component(
            _transformers_class(encoder.model_class),
            encoder.source['pretrained_model_name_or_path'],
            encoder.source['subfolder'],
            field=FIELD,
            component='image_encoder',
        )
        .requires_grad_(False)
        .to(device=device, dtype=dtype)
    )
    modes = {
        k: v
        for k, v in model.quantize_modes.items()
        if k in ('text_encoders', 'image_encoder')
    }
    if modes:
        quantize_parts(model, modes)


@contextlib.contextmanager
def resident_encoders(model: nn.Module) -> Iterator[None]:
    """The released text and image encoders loaded for the block, freed
    after (a no-op when nothing was released)."""
    released = released_encoders(model)
    if not any(name != 'family.vae.encoder' for name in released):
        yield
        return
    _reload(model)
    try:
        yield
    finally:
        _release_text_and_image(model)
        _free_memory()
