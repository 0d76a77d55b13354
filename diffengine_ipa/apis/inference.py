"""Load a family's diffusers pipeline with trained adapters, as a diffusers
user would.

The pipeline comes from ``from_pretrained`` of the base model (or
``from_single_file`` of a fine-tuned checkpoint, or a ControlNet pipeline),
then ``load_ip_adapter`` of each adapter; each adapter's image encoder is
registered beside it. The same seed therefore gives the same image as
diffusers with the converted files loaded.
"""

import json
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import CheckpointError, ModelSourceError, UserError
from ..models.families import family_class
from ..models.generation import AdapterPipeline, ImagePrompt, pipeline_extras
from ..models.image_encoders import image_encoder_config
from ..models.image_projections import PROJECTIONS_BY_VARIANT, faceid_variant
from ..models.model_sources import load_component
from ..official_format import (
    NeedsLayerOrder,
    cast_adapter,
    compare_adapter,
    describe_official,
    expected_adapter,
    nest_official,
    read_adapter,
)
from ..registry import MODELS

__all__ = ['AdapterSpec', 'load_pipeline', 'build_pipeline', 'generation_settings']

SINGLE_FILES = ('.safetensors', '.ckpt')


@dataclass
class AdapterSpec:
    """One adapter to load.

    Args:
        path: A training checkpoint, a work dir, an official file, or an
            official script's checkpoint folder.
        scale: Its default strength (a float, or the family's per-block
            form, or a preset name such as ``'style'``).
        image_encoder: Its image encoder's config entry (default: the
            config's ``model.image_encoder``), or a path (its type is read
            from its ``config.json``).
    """

    path: str
    scale: Any = 1.0
    image_encoder: dict | str | None = field(default=None)

    @classmethod
    def parse(cls, text: str) -> 'AdapterSpec':
        """``PATH[:SCALE][@ENCODER]``: an adapter on the command line; the
        encoder a Hub id or folder, ``//`` before a subfolder."""
        encoder = None
        if '@' in text:
            text, encoder = text.rsplit('@', 1)
            if '//' in encoder:
                path, subfolder = encoder.split('//', 1)
                encoder = dict(pretrained_model_name_or_path=path, subfolder=subfolder)
        scale: Any = 1.0
        head, _, tail = text.rpartition(':')
        if head and not isinstance(value := parse_scale(tail, text), str):
            scale, text = value, head  # else a colon of the path itself
        return cls(text, scale, encoder)


def _own_encoder(spec: AdapterSpec, index: int) -> str | None:
    """How messages name an adapter's own image encoder (``@ENCODER``)."""
    encoder = spec.image_encoder
    if not encoder:
        return None
    if isinstance(encoder, dict):
        encoder = '//'.join(
            str(encoder[k])
            for k in ('pretrained_model_name_or_path', 'subfolder')
            if encoder.get(k)
        )
    return f'the image encoder {encoder} of adapter {index + 1} ({spec.path}@...)'


def parse_scale(text: str | float | None, field: str = 'scale') -> Any:
    """A scale as written: a number, one per adapter (``0.5,0.8``), the
    per-block form as JSON, or a preset's name (``style``); the one parser of
    the command line, ``PATH:SCALE`` and the web UI.

    Raises:
        UserError: one line for JSON that does not parse or a number that is
            negative or not finite.
    """
    if text is None or isinstance(text, (int, float)):
        values = [] if text is None else [float(text)]
        text = str(text)
    elif text.lstrip().startswith(('{', '[')):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f'{field} {text}: not JSON ({err.msg})') from None
    else:
        try:
            values = [float(part) for part in text.split(',')]
        except ValueError:
            return text  # a preset
    if not values:
        return None
    if not all(math.isfinite(value) and value >= 0 for value in values):
        raise UserError(f'{field} {text}: scales are finite numbers, 0 or more')
    return values[0] if len(values) == 1 else values


def _load_base(
    family: Any,
    model_cfg: dict,
    base_model: str | None,
    controlnet: str | None,
    dtype: torch.dtype,
) -> Any:
    """The family's pipeline (or its ControlNet pipeline) of the base model:
    the config's, a folder or Hub id, or a single-file checkpoint."""
    import diffusers

    generation = family.generation
    name = (
        generation.controlnet_pipeline_class
        if controlnet
        else generation.pipeline_class
    )
    pipeline_class = getattr(diffusers, name)
    extra = dict(pipeline_extras(pipeline_class))
    if controlnet:
        extra['controlnet'] = load_component(
            getattr(diffusers, generation.controlnet_model_class),
            controlnet,
            field='--controlnet',
            dtype=dtype,
        )
    source = base_model or model_cfg['pretrained_model_name_or_path']
    if source.endswith(SINGLE_FILES):
        if not osp.isfile(source):
            raise UserError(f'--base-model: no file {osp.abspath(source)}')
        try:  # the configs of the config's base model, the weights of the file
            return pipeline_class.from_single_file(
                source,
                config=model_cfg['pretrained_model_name_or_path'],
                torch_dtype=dtype,
                **extra,
            )
        except (OSError, ValueError, KeyError) as err:
            raise UserError(
                f'--base-model {source}: not a {family.__name__} checkpoint that '
                f'diffusers reads ({str(err).splitlines()[0][:200]})'
            ) from None
    return load_component(
        pipeline_class,
        source,
        dtype=dtype,
        field='--base-model' if base_model else 'model.pretrained_model_name_or_path',
        **extra,
    )


def load_pipeline(
    model_cfg: dict,
    adapters: list[AdapterSpec],
    device: str = 'cpu',
    dtype: torch.dtype = torch.float32,
    base_model: str | None = None,
    controlnet: str | None = None,
) -> AdapterPipeline:
    """The config's family pipeline with ``adapters`` loaded.

    Args:
        model_cfg: The config's ``model`` (family, base model, encoder).
        adapters: What to load, in order.
        device: Where to run.
        dtype: Weights' dtype.
        base_model: Another base checkpoint of the same family (a folder, a
            Hub id, or a single ``.safetensors`` fine-tuned from the base).
        controlnet: A ControlNet (folder or Hub id) of the family.

    Raises:
        UserError: one line when an adapter was made for another family,
            base model, image encoder or variant, or the family's pipeline
            cannot take what is asked (e.g. two adapters for SD3.5).
    """
    family = family_class(model_cfg)
    settings = dict(model_cfg.get('family') or {})
    settings.pop('type', None)
    family.generation.check_image_prompts([1] * len(adapters))
    files = {}
    for spec in adapters:  # read and check the files before any model loads
        try:
            files[spec.path] = read_adapter(spec.path)
        except NeedsLayerOrder:
            files[spec.path] = None  # numbered from the UNet below
    pipe = _load_base(family, model_cfg, base_model, controlnet, dtype)
    denoiser = getattr(pipe, family.denoiser_name)
    names = list(denoiser.attn_processors)
    configured = image_encoder_config(model_cfg['image_encoder'])
    projection_cfg = dict(
        model_cfg.get('image_projection') or family.default_projection
    )
    encoders: dict[str, Any] = {}
    prompts, states = [], []
    for index, spec in enumerate(adapters):
        state, metadata = files[spec.path] or read_adapter(spec.path, names)
        found = describe_official(state)
        encoder_cfg = (
            image_encoder_config(spec.image_encoder)
            if spec.image_encoder
            else configured
        )
        key = repr(sorted(encoder_cfg.items()))
        own = _own_encoder(spec, index)
        if key not in encoders:
            try:
                encoders[key] = MODELS.build(encoder_cfg).to(dtype=dtype)
            except ModelSourceError as err:
                if own is None:
                    raise
                reason = str(err).split(': ', 1)[-1]
                raise ModelSourceError(f'{own}: {reason}') from None
        if index == 0:  # the config's adapter: its projection, checked
            projection = MODELS.get(projection_cfg['type'])
            tokens = projection_cfg.get('num_tokens')
            face_width = projection_cfg.get('id_embed_dim')
        else:  # another: the file's own variant
            projection, tokens = PROJECTIONS_BY_VARIANT[found['variant']], None
            face_width = None
        try:
            compare_adapter(
                found,
                expected_adapter(
                    family, denoiser, encoders[key], projection, tokens, face_width
                ),
                spec.path,
            )
        except CheckpointError as err:
            if own is None or 'the configured image encoder' not in str(err):
                raise
            raise CheckpointError(
                str(err).replace('the configured image encoder', own)
            ) from None
        faceid = faceid_variant(projection_cfg if index == 0 else projection)
        if faceid:  # as the file records it (Plus and PlusV2 share their keys)
            faceid = metadata.get('faceid_variant', faceid)
        prompts.append(ImagePrompt(encoders[key], projection.image_features, faceid))
        states.append(nest_official(cast_adapter(state, dtype, spec.path)))
    first = prompts[0].image_encoder
    pipe.register_modules(image_encoder=first.model, feature_extractor=first.processor)
    try:
        family.generation.load_ip_adapter(pipe, states)
    except (RuntimeError, ValueError, KeyError, IndexError) as err:
        # What the checks above cannot see: a layer sized for another model.
        detail = str(err).strip().splitlines()
        raise CheckpointError(
            f'{", ".join(spec.path for spec in adapters)}: does not fit the '
            f'configured base model ({detail[-1] if detail else type(err).__name__})'
        ) from None
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    for encoder in encoders.values():
        encoder.to(device)
    return AdapterPipeline(pipe, family, prompts, settings)


def build_pipeline(
    model_cfg: dict,
    adapter_path: str,
    device: str = 'cpu',
    dtype: torch.dtype = torch.float32,
) -> AdapterPipeline:
    """The config's family pipeline with one adapter loaded."""
    return load_pipeline(model_cfg, [AdapterSpec(adapter_path)], device, dtype)


def generation_settings(model_cfg: dict, **given: Any) -> dict[str, Any]:
    """How to generate: what the caller gives (``None`` = not given), else
    the config's ``generation_cfg``, else the family's defaults."""
    family = family_class(model_cfg)
    settings = dict(family.generation.generation_defaults, height=None, width=None)
    settings.update(model_cfg.get('generation_cfg') or {})
    settings.update({k: v for k, v in given.items() if v is not None})
    return settings
