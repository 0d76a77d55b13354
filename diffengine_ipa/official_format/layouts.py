"""The official IP-Adapter file layouts: what they share, and our names in them.

Each layout is defined beside the family that saves in it (its module in
``diffengine_ipa.models.families``) and registered in ``LAYOUTS``; this
module holds the canonical form, the key maps, the checks the layouts share
and the lookup by keys. Today's layouts:

Every layout is kept internally as one flat dict, the *canonical* form:
``image_proj.<name>`` for the projection and ``ip_adapter.<i>.<name>`` for
the attention of layer ``i``, ``i`` being the layer's position in the
denoiser's ``attn_processors`` (what diffusers' loaders count):

* ``ip-adapter`` (tencent-ailab; SD1.5, SDXL): ``ip_adapter.<odd>.to_{k,v}_ip
  .weight``; projection ``proj``/``norm`` (4 tokens) or the Plus Resampler.
  Loaded by ``IPAdapterMixin.load_ip_adapter`` and ComfyUI.
* ``instantx-sd3`` (InstantX; SD3.5): per block ``norm_ip.linear``,
  ``to_{k,v}_ip``, RMS norms ``norm_q``, ``norm_k``, ``norm_ip_k``; the
  time-aware Resampler under InstantX's names. Loaded by
  ``SD3IPAdapterMixin.load_ip_adapter``.
* ``xlabs-flux`` (XLabs; FLUX.1): ``to_{k,v}_ip`` with biases on the
  double-stream blocks 0…18; projection ``proj``/``norm``. A ``.safetensors``
  carries XLabs' own names (``ip_adapter_proj_model.*``,
  ``double_blocks.<i>.processor.ip_adapter_double_stream_{k,v}_proj.*``),
  which ``FluxIPAdapterMixin.load_ip_adapter`` and XLabs' nodes read.
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from .weight_checks import check_weights

__all__ = [
    'LAYOUTS',
    'AdapterLayout',
    'layout_of',
    'projection_key_map',
    'attention_key_map',
    'describe_official',
    'validate_official',
    'projection_part',
    'layer_parts',
    'consecutive_layer_parts',
    'require_keys',
    'check_input_width',
    'check_resampler',
    'describe_layout',
    'LAYER_KEY',
    'BASE_PROJECTION',
    'PLUS_PROJECTION',
    'FACEID_PROJECTION',
    'FACEID_PLUS_PROJECTION',
    'FACEID_LORA',
    'projection_variant',
]

LAYER_KEY = re.compile(r'^ip_adapter\.(\d+)\.(.+)$')

# Our (diffusers') projection parameter names → the official ones, by variant.
_PLUS_RENAMES = (
    ('.ln0.', '.0.norm1.'),
    ('.ln1.', '.0.norm2.'),
    ('.attn.to_q.', '.0.to_q.'),
    ('.attn.to_k.', '.0.to_kv.'),
    ('.attn.to_v.', '.0.to_kv.'),
    ('.attn.to_out.0.', '.0.to_out.'),
    ('.ff.0.', '.1.0.'),
    ('.ff.1.net.0.proj.', '.1.1.'),
    ('.ff.1.net.2.', '.1.3.'),
)
# The inverse of diffusers' InstantX conversion (transformer_sd3.py).
_TIME_RESAMPLER_RENAMES = (
    ('.ln0.', '.0.norm1.'),
    ('.ln1.', '.0.norm2.'),
    ('.attn.to_q.', '.0.to_q.'),
    ('.attn.to_kv.', '.0.to_kv.'),
    ('.attn.to_out.0.', '.0.to_out.'),
    ('.adaln_norm.', '.1.0.'),
    ('.ff.net.0.proj.', '.1.1.'),
    ('.ff.net.2.', '.1.3.'),
    ('.adaln_proj.', '.2.1.'),
)
# FaceID's MLP (diffusers' FeedForward) as tencent-ailab's Sequential.
_FACEID_RENAMES = (('ff.net.0.proj.', 'proj.0.'), ('ff.net.2.', 'proj.2.'))
_PROJECTION_RENAMES = {
    'base': (('image_embeds.', 'proj.'),),
    'plus': _PLUS_RENAMES,
    'time-resampler': _TIME_RESAMPLER_RENAMES,
    'faceid': _FACEID_RENAMES,
    'faceid-plus': (
        ('proj.net.0.proj.', 'proj.0.'),
        ('proj.net.2.', 'proj.2.'),
        *_PLUS_RENAMES,
    ),
}
# FaceID-Plus keeps its perceiver under this name (ProjPlusModel).
_PERCEIVER = ('perceiver_resampler.', ('proj_in.', 'proj_out.', 'norm_out.', 'layers.'))


def projection_key_map(projection: nn.Module, prefix: str = '') -> dict[str, str]:
    """``{prefix + our name: 'image_proj.' + official name}``. Plus's K and V
    map to the same ``to_kv``, stacked in that order."""
    renames = _PROJECTION_RENAMES[projection.variant]
    keys = {}
    for name, _ in projection.named_parameters():
        official = f'.{name}'
        for ours, theirs in renames:
            official = official.replace(
                '.' + ours.lstrip('.'), '.' + theirs.lstrip('.')
            )
        official = official[1:]
        if projection.variant == 'faceid-plus' and official.startswith(_PERCEIVER[1]):
            official = _PERCEIVER[0] + official
        keys[prefix + name] = 'image_proj.' + official
    return keys


def attention_key_map(denoiser: nn.Module, prefix: str = '') -> dict[str, str]:
    """``{prefix + our name: 'ip_adapter.<i>.<name>'}`` for every trainable
    processor, ``i`` its position in ``denoiser.attn_processors`` (the
    ``.0`` of a single adapter's ``ModuleList`` dropped)."""
    keys = {}
    for index, (name, processor) in enumerate(denoiser.attn_processors.items()):
        if not isinstance(processor, nn.Module):
            continue
        for param, _ in processor.named_parameters():
            official = re.sub(r'\.0\.', '.', f'.{param}.')[1:-1]
            keys[f'{prefix}{name}.{param}'] = f'ip_adapter.{index}.{official}'
    return keys


def projection_part(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        k[len('image_proj.') :]: v
        for k, v in state.items()
        if k.startswith('image_proj.')
    }


def layer_parts(
    state: dict[str, torch.Tensor], source: str
) -> dict[int, dict[str, torch.Tensor]]:
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith('image_proj.'):
            continue
        match = LAYER_KEY.match(key)
        if not match:
            raise CheckpointError(f'{source}: unexpected key {key}')
        layers.setdefault(int(match[1]), {})[match[2]] = value
    if not layers:
        raise CheckpointError(f'{source}: no ip_adapter.<i>.* weights')
    return layers


def consecutive_layer_parts(
    state: dict[str, torch.Tensor], source: str
) -> dict[int, dict[str, torch.Tensor]]:
    """:func:`layer_parts` of a layout with an adapter on each layer it
    names (SD3.5's, FLUX.1's): numbered 0, 1, 2, ..."""
    layers = layer_parts(state, source)
    if sorted(layers) != list(range(len(layers))):
        raise CheckpointError(
            f'{source}: ip_adapter layers must be '
            f'numbered 0, 1, 2, ...; got {sorted(layers)[:6]}'
        )
    return layers


def check_input_width(
    params: dict[str, torch.Tensor],
    key: str,
    width: int,
    index: int,
    source: str,
    what: str = 'tokens',
) -> None:
    """Layer ``index``'s ``key`` weight reads ``width``-d input, the width
    the file's ``image_proj`` makes."""
    found = params[key].shape[1]
    if found != width:
        raise CheckpointError(
            f'{source}: ip_adapter.{index}.{key} reads {found}-d {what}, '
            f'image_proj makes {width}-d'
        )


def require_keys(
    found: dict, needed: set, where: str, source: str, exact: bool = False
) -> None:
    """``found`` has every key of ``needed`` (and, if ``exact``, no other)."""
    if not needed <= set(found):
        raise CheckpointError(
            f'{source}: {where} lacks '
            f'{sorted(needed - set(found))[0]} (has '
            f'{sorted(found)[:4]})'
        )
    if exact and set(found) - needed:
        raise CheckpointError(
            f'{source}: {where} has an unexpected {sorted(set(found) - needed)[0]}'
        )


BASE_PROJECTION = {'proj.weight', 'proj.bias', 'norm.weight', 'norm.bias'}
FACEID_PROJECTION = {
    'proj.0.weight',
    'proj.0.bias',
    'proj.2.weight',
    'proj.2.bias',
    'norm.weight',
    'norm.bias',
}

PLUS_PROJECTION = {
    'latents',
    'proj_in.weight',
    'proj_in.bias',
    'proj_out.weight',
    'proj_out.bias',
    'norm_out.weight',
    'norm_out.bias',
}


FACEID_PLUS_PROJECTION = FACEID_PROJECTION | {
    'perceiver_resampler.' + key for key in PLUS_PROJECTION - {'latents'}
}
FACEID_LORA = {
    f'{target}_lora.{part}.weight'
    for target in ('to_q', 'to_k', 'to_v', 'to_out')
    for part in ('down', 'up')
}


def projection_variant(proj: dict[str, torch.Tensor]) -> str:
    """A tencent-ailab projection's variant, told by its keys (as diffusers'
    loader tells them)."""
    if 'perceiver_resampler.proj_in.weight' in proj:
        return 'faceid-plus'
    if 'proj.0.weight' in proj:
        return 'faceid'
    return 'plus' if 'latents' in proj else 'base'


def check_resampler(proj: dict[str, torch.Tensor], source: str) -> None:
    """The Resampler's widths agree: latents, ``proj_in`` and ``proj_out``
    share the hidden width, ``norm_out`` the output width."""
    hidden = proj['latents'].shape[2]
    widths = (
        ('proj_in.weight', 0, hidden),
        ('proj_out.weight', 1, hidden),
        ('norm_out.weight', 0, proj['proj_out.weight'].shape[0]),
    )
    for key, dim, width in widths:
        if proj[key].shape[dim] != width:
            raise CheckpointError(
                f'{source}: image_proj.{key} has shape '
                f'{tuple(proj[key].shape)}, but the Resampler is {width} wide '
                'there'
            )


class AdapterLayout:
    """One official layout: how to recognise, check and describe a file.

    Each family's module defines the layout its adapters are saved in and
    registers it in ``LAYOUTS`` (diffengine_ipa.registry); a layout shared
    by several families (tencent-ailab's, SD1.5 and SDXL) is defined once.
    """

    name = ''
    loader = ''  # what loads it
    families = {}  # token width → family, for the description
    fallback = False  # the layout of files no other layout recognises

    def family_label(self, width: int) -> str:
        """The published family with image tokens this wide."""
        return self.families.get(width, 'unknown')

    def recognises(self, layer_keys: list[str]) -> bool:
        """Whether the per-layer names (``to_k_ip.weight``, ...) are this
        layout's own."""
        return False

    def to_file(self, state: dict[str, torch.Tensor]) -> dict:
        """Canonical keys → the names a ``.safetensors`` of this layout uses."""
        return state

    def from_file(self, state: dict) -> dict:
        """A file's own names → canonical (the identity for most layouts)."""
        return state

    def validate(self, state: dict[str, torch.Tensor], source: str) -> None:
        raise NotImplementedError

    def describe(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        raise NotImplementedError


def describe_layout(
    layout: AdapterLayout,
    state: dict[str, torch.Tensor],
    variant: str,
    width: int,
    tokens: int,
    image_dim: int,
) -> dict[str, Any]:
    layers = {int(m[1]) for k in state if (m := LAYER_KEY.match(k))}
    return dict(
        layout=layout.name,
        family=layout.family_label(width),
        variant=variant,
        layers=len(layers),
        tokens=tokens,
        cross_attention_dim=width,
        image_embed_dim=image_dim,
        parameters=sum(v.numel() for v in state.values()),
        dtype=str(next(iter(state.values())).dtype).replace('torch.', ''),
    )


class _Layouts(Mapping):
    """``{name: layout}`` of every registered layout, read from the family
    modules on first use (they register what they save in)."""

    def _all(self) -> dict[str, AdapterLayout]:
        if not hasattr(self, '_layouts'):
            from ..registry import LAYOUTS as registered

            registered.import_from_location()
            self._layouts = {cls.name: cls() for cls in registered.module_dict.values()}
        return self._layouts

    def __getitem__(self, name: str) -> AdapterLayout:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


LAYOUTS = _Layouts()


def layout_of(state: dict[str, torch.Tensor]) -> AdapterLayout:
    """The layout of a canonical state dict, told by its keys."""
    layer_keys = [m[2] for k in state if (m := LAYER_KEY.match(k))]
    layouts = list(LAYOUTS.values())
    for layout in layouts:
        if layout.recognises(layer_keys):
            return layout
    return next(layout for layout in layouts if layout.fallback)


def validate_official(state: dict[str, torch.Tensor], source: str) -> None:
    """Check every weight (finite floats of the right rank, see
    :mod:`.weight_checks`) and what the layout's loader relies on; raise one
    line if anything is off. Every reader of adapter files calls this:
    convert, infer, test, ``pretrained_ip_adapter``, ``--resume`` and
    ``load_from``."""
    check_weights(state, source)
    layout_of(state).validate(state, source)


def describe_official(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Layout, family, variant, counts and widths of a canonical state."""
    return layout_of(state).describe(state)
