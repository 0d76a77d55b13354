"""Generate with a trained adapter through a plain diffusers pipeline.

The pipeline is the one a diffusers user builds (``from_pretrained`` of the
base model with the image encoder, then ``load_ip_adapter``), so the same
seed gives the same image as diffusers with the converted file loaded.
"""
from typing import Any

import torch

from ..adapter_files import (
    compare_adapter,
    describe_official,
    find_checkpoint,
    load_weights_file,
    nest_official,
    to_official,
    validate_official,
)
from ..models.generation import generate
from ..models.ip_adapter import expected_adapter
from ..models.model_sources import load_component
from ..registry import MODELS

__all__ = ['load_adapter', 'check_adapter_fits', 'build_pipeline', 'generate']


def load_adapter(path: str, processor_names: list[str] | None = None
                 ) -> dict[str, torch.Tensor]:
    """The official flat state dict from a training checkpoint, a work dir
    (its last checkpoint), an official ``.safetensors``/``.bin``, or an
    official script's checkpoint (``processor_names``: the UNet's
    ``attn_processors`` order, for one whose aliases are missing)."""
    path = find_checkpoint(path)
    contents, _ = load_weights_file(path)
    state = to_official(contents, path, processor_names)
    validate_official(state, path)
    return state


def check_adapter_fits(adapter: dict[str, torch.Tensor], model_cfg: dict,
                       unet: Any, image_encoder: Any, source: str) -> None:
    """Stop with one line if the adapter was made for another base model,
    image encoder or variant (rather than a shape error deep in diffusers)."""
    projection = model_cfg.get('image_projection', {})
    projection_class = MODELS.get(projection.get('type',
                                                 'IPAdapterImageProjection'))
    expected = expected_adapter(projection_class, unet, image_encoder)
    expected['tokens'] = projection.get('num_tokens')  # None: not configured
    compare_adapter(describe_official(adapter), expected, source)


def build_pipeline(model_cfg: dict,
                   adapter_path: str,
                   device: str = 'cpu',
                   dtype: torch.dtype = torch.float32) -> Any:
    """The diffusers pipeline of the config's base model, adapter loaded.

    Args:
        model_cfg: The config's ``model`` (its sources and prompt encoder).
        adapter_path: Anything :func:`load_adapter` reads.
        device: Where to run.
        dtype: Weights' dtype.
    """
    import diffusers
    from transformers import CLIPVisionModelWithProjection

    encoder_type = model_cfg.get('prompt_encoder', {}).get(
        'type', 'SD15PromptEncoder')
    pipeline_class = getattr(diffusers, MODELS.get(encoder_type).pipeline_class)
    image_encoder = load_component(
        CLIPVisionModelWithProjection,
        model_cfg['image_encoder_path'],
        model_cfg.get('image_encoder_subfolder'),
        field='model.image_encoder_path',
        component='image_encoder',
        dtype=dtype)
    extra = {}
    if 'safety_checker' in pipeline_class._optional_components:
        extra = dict(safety_checker=None, requires_safety_checker=False)
    pipe = load_component(
        pipeline_class,
        model_cfg['pretrained_model_name_or_path'],
        image_encoder=image_encoder,
        dtype=dtype,
        **extra)
    adapter = load_adapter(adapter_path, list(pipe.unet.attn_processors))
    check_adapter_fits(adapter, model_cfg, pipe.unet, image_encoder,
                       adapter_path)
    weights = {k: v.to(dtype) for k, v in adapter.items()}
    pipe.load_ip_adapter(
        nest_official(weights), subfolder='', weight_name='ip_adapter')
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
