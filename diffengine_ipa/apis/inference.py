"""Generate with a trained adapter through a plain diffusers pipeline.

The pipeline is the one a diffusers user builds (``from_pretrained`` of the
base model, then ``load_ip_adapter``), with the config's image encoder
registered in it, so the same seed gives the same image as diffusers with the
converted file loaded.
"""
from typing import Any

import torch

from ..errors import CheckpointError
from ..models.generation import AdapterPipeline, pipeline_extras
from ..models.ip_adapter import image_encoder_config
from ..models.model_sources import load_component
from ..official_format import (
    NeedsLayerOrder,
    cast_adapter,
    compare_adapter,
    describe_official,
    expected_adapter,
    load_adapter,
    nest_official,
)
from ..registry import MODELS

__all__ = ['build_pipeline']


def build_pipeline(model_cfg: dict,
                   adapter_path: str,
                   device: str = 'cpu',
                   dtype: torch.dtype = torch.float32) -> AdapterPipeline:
    """The config's family pipeline with the adapter loaded.

    Args:
        model_cfg: The config's ``model`` (sources, family, image encoder,
            projection).
        adapter_path: A training checkpoint, a work dir, an official file, or
            an official script's checkpoint folder.
        device: Where to run.
        dtype: Weights' dtype.

    Raises:
        CheckpointError: one line when the adapter was made for another
            family, base model, image encoder or variant.
    """
    import diffusers

    try:  # read and check the file before any model loads
        adapter = load_adapter(adapter_path)
    except NeedsLayerOrder:
        adapter = None  # numbered from the UNet below
    settings = dict(model_cfg.get('family', dict(type='SD15')))
    family = MODELS.get(settings.pop('type'))
    encoder = MODELS.build(image_encoder_config(model_cfg['image_encoder']))
    encoder.to(dtype=dtype)
    pipeline_class = getattr(diffusers, family.pipeline_class)
    pipe = load_component(pipeline_class,
                          model_cfg['pretrained_model_name_or_path'],
                          dtype=dtype, **pipeline_extras(pipeline_class))
    denoiser = getattr(pipe, family.denoiser_name)
    projection_cfg = dict(model_cfg.get('image_projection') or {})
    projection = MODELS.get(projection_cfg.get('type',
                                               'IPAdapterImageProjection'))
    if adapter is None:
        adapter = load_adapter(adapter_path, list(denoiser.attn_processors))
    expected = expected_adapter(family, denoiser, encoder, projection,
                                tokens=projection_cfg.get('num_tokens'))
    compare_adapter(describe_official(adapter), expected, adapter_path)
    pipe.register_modules(image_encoder=encoder.model,
                          feature_extractor=encoder.processor)
    weights = cast_adapter(adapter, dtype, adapter_path)
    try:
        family.load_ip_adapter(pipe, nest_official(weights))
    except (RuntimeError, ValueError, KeyError, IndexError) as err:
        # What the checks above cannot see: a layer sized for another model.
        detail = str(err).strip().splitlines()
        raise CheckpointError(
            f'{adapter_path}: does not fit the configured base model '
            f'({detail[-1] if detail else type(err).__name__})') from None
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    return AdapterPipeline(pipe, family, encoder, projection.image_features,
                           settings)


def generation_settings(model_cfg: dict, **given: Any) -> dict[str, Any]:
    """How to generate: what the caller gives (``None`` = not given), else
    the config's ``generation_cfg``, else the family's defaults."""
    family = MODELS.get(dict(model_cfg.get('family', dict(type='SD15')))['type'])
    settings = dict(family.generation_defaults, height=None, width=None)
    settings.update(model_cfg.get('generation_cfg') or {})
    settings.update({k: v for k, v in given.items() if v is not None})
    return settings
