"""From any adapter file this kit understands to the canonical official state,
and between that state and a live model.

Inputs: a training checkpoint of this kit (``state_dict`` plus
``meta['ip_adapter']['key_map']``), a nested official ``.bin``, a flat
official dict (XLabs' FLUX names included), or what the official
``tutorial_train*.py`` scripts save.
"""

import re
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from .files import find_checkpoint, load_weights_file
from .layouts import (
    LAYOUTS,
    attention_key_map,
    describe_official,
    projection_key_map,
    validate_official,
)

__all__ = [
    'NeedsLayerOrder',
    'cast_adapter',
    'to_official',
    'rename_to_official',
    'load_adapter',
    'read_adapter',
    'compare_adapter',
    'expected_adapter',
    'official_key_map',
    'adapter_metadata',
    'official_state_dict',
    'adapter_weights',
    'load_official_state_dict',
    'load_adapter_into',
]


class NeedsLayerOrder(CheckpointError):
    """An official-script checkpoint whose layers can be numbered only from
    the base model's ``attn_processors`` order."""


def rename_to_official(
    state: dict[str, torch.Tensor], key_map: dict[str, str]
) -> dict[str, torch.Tensor]:
    """Our weights under their official names. Several of ours that map to
    one official key (Plus's K and V → ``to_kv``) are stacked along dim 0 in
    the key map's order."""
    groups: dict[str, list[torch.Tensor]] = {}
    for ours, official in key_map.items():
        groups.setdefault(official, []).append(state[ours])
    return {
        official: parts[0] if len(parts) == 1 else torch.cat(parts)
        for official, parts in groups.items()
    }


_OFFICIAL_KEY = re.compile(r'^(image_proj\.[\w.]+|ip_adapter\.\d+\.[\w.]+)$')


def _check_key_map(key_map: Any, state: Any, source: str) -> None:
    """The checkpoint's ``meta['ip_adapter']['key_map']`` maps weights it
    holds to official names; parts stacked into one name fit together."""
    if not isinstance(key_map, dict) or not key_map or not isinstance(state, dict):
        raise CheckpointError(
            f"{source}: meta['ip_adapter']['key_map'] "
            'is not a map of the adapter weights'
        )
    groups: dict[str, list] = {}
    for ours, official in key_map.items():
        if not (
            isinstance(ours, str)
            and isinstance(official, str)
            and _OFFICIAL_KEY.match(official)
        ):
            raise CheckpointError(
                f'{source}: the key map sends {ours!r} to '
                f'{official!r}, not an official key name'
            )
        if ours not in state:
            missing = [key for key in key_map if key not in state]
            raise CheckpointError(
                f'{source}: adapter weight {missing[0]} is '
                f'missing ({len(missing)} in all)'
            )
        if not isinstance(state[ours], torch.Tensor):
            raise CheckpointError(
                f'{source}: {ours} is a {type(state[ours]).__name__}, not a tensor'
            )
        groups.setdefault(official, []).append(state[ours])
    for official, parts in groups.items():
        if len({(p.dim(), tuple(p.shape[1:])) for p in parts}) > 1:
            raise CheckpointError(
                f'{source}: the key map stacks weights of '
                f'different shapes into {official}'
            )


# diffusers' UNet2DConditionModel registers down_blocks, up_blocks, then
# mid_block: attn_processors walks its children in that order.
_BLOCK_ORDER = {'down_blocks': 0, 'up_blocks': 1, 'mid_block': 2}


def processor_order(contents: dict) -> list[str] | None:
    """The UNet's ``attn_processors`` names, in its order, read from the
    attention weights (``unet.<path>.to_q.weight``) an official-script
    checkpoint holds; ``None`` when it holds no UNet. Numbers sort as
    numbers (``attentions.10`` after ``attentions.9``)."""
    suffix = '.to_q.weight'
    paths = [
        k[len('unet.') : -len(suffix)]
        for k in contents
        if k.startswith('unet.')
        and k.endswith(suffix)
        and not k.endswith('_ip' + suffix)
    ]
    if not paths or any(p.split('.')[0] not in _BLOCK_ORDER for p in paths):
        return None

    def place(path: str) -> tuple:
        first, *rest = path.split('.')
        return (
            _BLOCK_ORDER[first],
            *((0, int(p), '') if p.isdigit() else (1, 0, p) for p in rest),
        )

    return [f'{p}.processor' for p in sorted(paths, key=place)]


def _tutorial_to_official(
    contents: dict, source: str, processor_names: list[str] | None
) -> dict:
    """What ``tutorial_train*.py`` saves: ``unet.*`` (the whole UNet, adapter
    processors included), ``image_proj_model.*`` and ``adapter_modules.<i>.*``,
    ``adapter_modules`` being ``ModuleList(unet.attn_processors.values())``,
    so ``<i>`` is already the official number. Saved as safetensors those
    aliases of UNet tensors can vanish; then the layers are numbered from the
    UNet's own ``attn_processors`` order (``processor_names``, else as the
    file's UNet names give it: :func:`processor_order`)."""
    state = {
        'image_proj.' + k[len('image_proj_model.') :]: v
        for k, v in contents.items()
        if k.startswith('image_proj_model.')
    }
    aliases = {
        k[len('adapter_modules.') :]: v
        for k, v in contents.items()
        if k.startswith('adapter_modules.')
    }
    if aliases:
        state.update({f'ip_adapter.{k}': v for k, v in aliases.items()})
        return state
    in_unet = {
        k[len('unet.') : -len('.to_k_ip.weight')]
        for k in contents
        if k.endswith('.processor.to_k_ip.weight')
    }
    if not in_unet:
        raise CheckpointError(
            f'{source}: an official-script checkpoint without '
            'adapter weights (no adapter_modules.* and no '
            'unet.*.processor.to_k_ip.weight keys)'
        )
    if processor_names is None:
        processor_names = processor_order(contents)
    if processor_names is None:
        raise NeedsLayerOrder(
            f'{source}: the adapter_modules.* keys are missing (safetensors '
            "drops tensors that alias the UNet's); pass --config CONFIG (the "
            'base model it was trained on) so the layers are numbered from '
            "that UNet's attn_processors"
        )
    unknown = sorted(in_unet - set(processor_names))
    if unknown:
        raise CheckpointError(
            f'{source}: {unknown[0]} is not a layer of the '
            "configured UNet: another base model's checkpoint?"
        )
    for index, name in enumerate(processor_names):
        if name in in_unet:
            for kind in ('to_k_ip', 'to_v_ip'):
                state[f'ip_adapter.{index}.{kind}.weight'] = contents[
                    f'unet.{name}.{kind}.weight'
                ]
    return state


def to_official(
    contents: dict, source: str, processor_names: list[str] | None = None
) -> dict[str, torch.Tensor]:
    """The canonical flat state from any file this kit understands
    (``processor_names``: a UNet's ``attn_processors`` order, needed only
    for an official-script checkpoint whose aliases are missing)."""
    if not isinstance(contents, dict):
        raise CheckpointError(
            f'{source}: holds a {type(contents).__name__}, not a checkpoint dict'
        )
    if not all(isinstance(key, str) for key in contents):
        raise CheckpointError(f'{source}: not a checkpoint: its keys are not all names')
    meta = contents.get('meta')
    if isinstance(meta, dict) and 'state_dict' in contents:
        info = meta.get('ip_adapter')
        if not isinstance(info, dict) or 'key_map' not in info:
            raise CheckpointError(
                f'{source}: an MMEngine checkpoint without diffengine_ipa '
                "adapter metadata (meta['ip_adapter']); was it written by a "
                'config with AdapterCheckpointHook?'
            )
        state = contents['state_dict']
        _check_key_map(info['key_map'], state, source)
        return rename_to_official(state, info['key_map'])
    if set(contents) >= {'image_proj', 'ip_adapter'} and all(
        isinstance(contents[k], dict) for k in ('image_proj', 'ip_adapter')
    ):
        return {
            f'{part}.{key}': value
            for part in ('image_proj', 'ip_adapter')
            for key, value in contents[part].items()
        }  # odd names and values are caught by validate_official
    flat = contents
    for layout in LAYOUTS.values():  # a layout's own file names
        flat = layout.from_file(flat)
    if any(key.startswith(('image_proj.', 'ip_adapter.')) for key in flat):
        return dict(flat)
    if any(key.startswith('image_proj_model.') for key in contents):
        return _tutorial_to_official(contents, source, processor_names)
    keys = ', '.join(list(contents)[:5])
    raise CheckpointError(
        f"{source}: not an IP-Adapter checkpoint: no 'image_proj'/"
        f"'ip_adapter' keys and no diffengine_ipa metadata (keys: {keys})"
    )


def cast_adapter(
    state: dict[str, torch.Tensor], dtype: torch.dtype, source: str
) -> dict[str, torch.Tensor]:
    """The weights in ``dtype``; one line when a weight does not fit in it
    (fp16 overflows above 65504 and would generate black images)."""
    cast = {key: value.to(dtype) for key, value in state.items()}
    for key, value in cast.items():
        if not bool(torch.isfinite(value).all()):
            largest = float(state[key].abs().max())
            raise CheckpointError(
                f'{source}: {key} does not fit in '
                f'{str(dtype).replace("torch.", "")} (largest value '
                f'{largest:.3g}); use bf16 or fp32'
            )
    return cast


def load_adapter(
    path: str, processor_names: list[str] | None = None
) -> dict[str, torch.Tensor]:
    """The canonical, checked state from a training checkpoint, a work dir
    (its last checkpoint), an official ``.safetensors``/``.bin``, or an
    official script's checkpoint."""
    return read_adapter(path, processor_names)[0]


def read_adapter(
    path: str, processor_names: list[str] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`load_adapter`'s state and what the kit recorded with it: a
    ``.safetensors`` header's metadata, a training checkpoint's
    ``meta['ip_adapter']`` (without its key map), else ``{}`` (a published
    ``.bin``)."""
    path = find_checkpoint(path)
    contents, metadata = load_weights_file(path)
    state = to_official(contents, path, processor_names)
    validate_official(state, path)
    meta = contents.get('meta') if isinstance(contents, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get('ip_adapter'), dict):
        metadata = {k: v for k, v in meta['ip_adapter'].items() if k != 'key_map'}
    return state, metadata


# --- fit ----------------------------------------------------------------------


def feature_width(
    image_encoder: Any, projection: Any, id_embed_dim: int | None = None
) -> int:
    """Width of the image features the projection reads: the image
    encoder's, or the face embedding's for FaceID (a module's
    ``id_embed_dim``; for a class, ``id_embed_dim`` as configured, 512)."""
    if projection.image_features is None:
        from ..models.image_projections import FACE_ID_DIM

        if isinstance(projection, nn.Module):
            return projection.id_embed_dim
        return id_embed_dim or FACE_ID_DIM
    return image_encoder.feature_dim(projection.image_features)


def expected_adapter(
    family: Any,
    denoiser: nn.Module,
    image_encoder: Any,
    projection: Any,
    tokens: int | None = None,
    id_embed_dim: int | None = None,
) -> dict[str, Any]:
    """What an adapter file must be to fit these modules.

    Args:
        family: The family (class or instance).
        denoiser: Its UNet or transformer, adapter installed or not.
        image_encoder: The :class:`ImageEncoder`.
        projection: The projection module, or its class.
        tokens: The image tokens, when known (a class has none).
        id_embed_dim: FaceID's face-embedding width, when configured (a
            class has none; default 512).
    """
    if tokens is None and isinstance(projection, nn.Module):
        tokens = projection.num_tokens
    return dict(
        layout=family.layout,
        variant=projection.variant,
        cross_attention_dim=family.token_width(denoiser),
        image_embed_dim=feature_width(image_encoder, projection, id_embed_dim),
        tokens=tokens,
        layers=len(family.adapter_layers(denoiser)),
    )


def compare_adapter(
    found: dict[str, Any], expected: dict[str, Any], source: str
) -> None:
    """Stop with one line when an adapter does not fit the configured model.

    Args:
        found: :func:`describe_official` of the file.
        expected: :func:`expected_adapter` of the configured model.
        source: The file, named in the message.
    """
    if found['layout'] != expected['layout']:
        wanted = LAYOUTS[expected['layout']]
        width = expected['cross_attention_dim']
        raise CheckpointError(
            f'{source}: an adapter in the {found["layout"]} layout '
            f'({found["family"]}, {found["cross_attention_dim"]}-d tokens) but '
            f'the configured model takes the {wanted.name} layout '
            f'({wanted.family_label(width)}, {width}-d tokens): the config '
            'names another model family'
        )
    if found['variant'] != expected['variant']:
        config = {
            'plus': 'a *_plus config (IPAdapterPlusImageProjection)',
            'faceid': 'a *_faceid config (IPAdapterFaceIDImageProjection)',
            'faceid-plus': 'a *_faceid_plus or *_faceid_plusv2 config '
            '(IPAdapterFaceIDPlusImageProjection)',
        }.get(found['variant'], 'a base config (IPAdapterImageProjection)')
        raise CheckpointError(
            f'{source}: an IP-Adapter {found["variant"]} file, but the config '
            f'builds a {expected["variant"]} adapter: use {config}'
        )
    if found['cross_attention_dim'] != expected['cross_attention_dim']:
        layout = LAYOUTS[found['layout']]
        raise CheckpointError(
            f'{source}: the adapter was trained for a '
            f'{found["cross_attention_dim"]}-d cross-attention '
            f'({found["family"]}) but the configured base model has '
            f'{expected["cross_attention_dim"]} '
            f'({layout.family_label(expected["cross_attention_dim"])})'
        )
    if found['image_embed_dim'] != expected['image_embed_dim']:
        what, encoders = (
            (
                'image embeddings',
                '768: CLIP ViT-L/14, 1024: ViT-H/14, 1280: ViT-bigG/14',
            )
            if found['variant'] == 'base'
            else ('face embeddings', '512: ArcFace')
            if found['variant'] == 'faceid'
            else (
                'hidden states',
                '1024: ViT-L/14, 1152: SigLIP so400m, 1280: ViT-H/14',
            )
        )
        raise CheckpointError(
            f'{source}: the adapter expects {found["image_embed_dim"]}-d '
            f'{what} ({encoders}); the configured image encoder gives '
            f'{expected["image_embed_dim"]}'
        )
    for field, what in (('tokens', 'image tokens'), ('layers', 'adapter layers')):
        if expected.get(field) is not None and found[field] != expected[field]:
            raise CheckpointError(
                f'{source}: the adapter has {found[field]} {what}; the '
                f'configured model has {expected[field]}'
            )


# --- a live IPAdapter model ---------------------------------------------------


def official_key_map(model: nn.Module) -> dict[str, str]:
    """The model's state-dict keys → the canonical official keys."""
    family = model.family
    keys = projection_key_map(model.image_projection, 'image_projection.')
    keys.update(attention_key_map(family.denoiser, f'family.{family.denoiser_name}.'))
    return keys


def adapter_metadata(model: nn.Module) -> dict[str, Any]:
    """What a converter needs to know to write the official file, and what
    the run was (plain data, stored in every checkpoint). FaceID's also
    names its published variant (Plus and PlusV2 share their keys) and the
    UNet LoRA's rank."""
    from ..models.image_projections import faceid_variant

    family, projection = model.family, model.image_projection
    name = faceid_variant(type(projection), getattr(projection, 'shortcut', False))
    faceid = dict(faceid_variant=name, lora_rank=projection.lora_rank) if name else {}
    return dict(
        **faceid,
        key_map=official_key_map(model),
        layout=family.layout,
        family=type(family).__name__,
        variant=projection.variant,
        num_tokens=projection.num_tokens,
        image_embed_dim=feature_width(model.image_encoder, projection),
        cross_attention_dim=family.token_width(family.denoiser),
        pretrained_model_name_or_path=model.sources['pretrained_model_name_or_path'],
        image_encoder=model.sources['image_encoder'],
    )


def official_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter in the canonical layout, detached copies on the CPU."""
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return rename_to_official(weights, official_key_map(model))


def adapter_weights(
    model: nn.Module, state: dict[str, torch.Tensor], source: str = 'adapter'
) -> dict[str, torch.Tensor]:
    """A canonical state under the model's own parameter names (Plus's
    ``to_kv`` split back into K and V). Strict: a missing, extra or
    mis-shaped weight stops with one line."""
    current = model.state_dict()
    ours: dict[str, list[str]] = {}
    for key, official in official_key_map(model).items():
        ours.setdefault(official, []).append(key)
    missing = sorted(set(ours) - set(state))
    extra = sorted(set(state) - set(ours))
    if missing or extra:
        raise CheckpointError(
            f'{source}: does not fit this model: '
            + (
                f'missing {missing[0]} ({len(missing)} in all)'
                if missing
                else f'unexpected {extra[0]} ({len(extra)} in all)'
            )
        )
    weights = {}
    for official, keys in ours.items():
        shapes = [current[key].shape for key in keys]
        expected = (sum(shape[0] for shape in shapes), *shapes[0][1:])
        if tuple(state[official].shape) != tuple(expected):
            raise CheckpointError(
                f'{source}: {official} has shape '
                f'{tuple(state[official].shape)}, this model needs '
                f'{tuple(expected)}'
            )
        parts = state[official].split([shape[0] for shape in shapes])
        weights.update(zip(keys, parts, strict=True))
    return weights


def load_official_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str = 'adapter'
) -> None:
    """Load a canonical state into the model (strict, see
    :func:`adapter_weights`)."""
    model.load_state_dict(adapter_weights(model, state, source), strict=True)


def load_adapter_into(model: nn.Module, path: str) -> None:
    """Read, check and load any adapter file into the model: one line when it
    was made for another family, image encoder or variant."""
    names = list(model.family.denoiser.attn_processors)
    state = load_adapter(path, names)
    compare_adapter(describe_official(state), model.expected_adapter(), path)
    load_official_state_dict(model, state, path)
