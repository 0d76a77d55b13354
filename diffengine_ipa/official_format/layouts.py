"""The three official IP-Adapter file layouts, and our names in them.

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
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from .weight_checks import check_weights

__all__ = [
    'LAYOUTS',
    'layout_of',
    'projection_key_map',
    'attention_key_map',
    'describe_official',
    'validate_official',
]

_LAYER = re.compile(r'^ip_adapter\.(\d+)\.(.+)$')

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
_PROJECTION_RENAMES = {
    'base': (('image_embeds.', 'proj.'),),
    'plus': _PLUS_RENAMES,
    'time-resampler': _TIME_RESAMPLER_RENAMES,
}


def projection_key_map(projection: nn.Module, prefix: str = '') -> dict[str, str]:
    """``{prefix + our name: 'image_proj.' + official name}``. Plus's K and V
    map to the same ``to_kv``, stacked in that order."""
    renames = _PROJECTION_RENAMES[projection.variant]
    keys = {}
    for name, _ in projection.named_parameters():
        official = name
        for ours, theirs in renames:
            official = official.replace(ours, theirs)
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


def _projection(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        k[len('image_proj.') :]: v
        for k, v in state.items()
        if k.startswith('image_proj.')
    }


def _layers(
    state: dict[str, torch.Tensor], source: str
) -> dict[int, dict[str, torch.Tensor]]:
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith('image_proj.'):
            continue
        match = _LAYER.match(key)
        if not match:
            raise CheckpointError(f'{source}: unexpected key {key}')
        layers.setdefault(int(match[1]), {})[match[2]] = value
    if not layers:
        raise CheckpointError(f'{source}: no ip_adapter.<i>.* weights')
    return layers


def _require(
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


_BASE_PROJECTION = {'proj.weight', 'proj.bias', 'norm.weight', 'norm.bias'}
_PLUS_PROJECTION = {
    'latents',
    'proj_in.weight',
    'proj_in.bias',
    'proj_out.weight',
    'proj_out.bias',
    'norm_out.weight',
    'norm_out.bias',
}


def _check_resampler(proj: dict[str, torch.Tensor], source: str) -> None:
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
    """One official layout: how to recognise, check and describe a file."""

    name = ''
    loader = ''  # what loads it
    families = {}  # token width → family, for the description

    def family_label(self, width: int) -> str:
        """The published family with image tokens this wide."""
        return self.families.get(width, 'unknown')

    def to_file(self, state: dict[str, torch.Tensor]) -> dict:
        """Canonical keys → the names a ``.safetensors`` of this layout uses."""
        return state

    def validate(self, state: dict[str, torch.Tensor], source: str) -> None:
        raise NotImplementedError

    def describe(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        raise NotImplementedError


class UNetLayout(AdapterLayout):
    """tencent-ailab's layout (SD1.5, SDXL; base and Plus)."""

    name = 'ip-adapter'
    loader = (
        "diffusers' IPAdapterMixin.load_ip_adapter "
        '(StableDiffusion/StableDiffusionXL pipelines), ComfyUI IPAdapter'
    )
    families = {768: 'SD1.5', 1024: 'SD2', 2048: 'SDXL'}

    def validate(self, state: dict[str, torch.Tensor], source: str) -> None:
        proj = _projection(state)
        plus = 'latents' in proj
        _require(
            proj, _PLUS_PROJECTION if plus else _BASE_PROJECTION, 'image_proj', source
        )
        if plus:
            _check_resampler(proj, source)
        width = self.describe(state)['cross_attention_dim']
        if not plus and proj['proj.weight'].shape[0] % width:
            raise CheckpointError(
                f'{source}: image_proj.proj.weight rows '
                f'{proj["proj.weight"].shape[0]} are not a multiple of the '
                f'cross-attention width {width}'
            )
        layers = _layers(state, source)
        kinds = {'to_k_ip.weight', 'to_v_ip.weight'}
        if sorted(layers) != list(range(1, 2 * len(layers), 2)) or any(
            set(params) != kinds for params in layers.values()
        ):
            raise CheckpointError(
                f'{source}: ip_adapter layers must be numbered 1, 3, 5, ... '
                f'with to_k_ip and to_v_ip each; got {sorted(layers)[:6]}'
            )
        for index, params in layers.items():
            for key, value in params.items():
                if value.shape[1] != width:
                    raise CheckpointError(
                        f'{source}: ip_adapter.{index}.{key} reads '
                        f'{value.shape[1]}-d tokens, image_proj makes {width}-d'
                    )
            if params['to_k_ip.weight'].shape != params['to_v_ip.weight'].shape:
                raise CheckpointError(
                    f'{source}: ip_adapter.{index}.to_k_ip and to_v_ip differ '
                    f'in shape ({tuple(params["to_k_ip.weight"].shape)} and '
                    f'{tuple(params["to_v_ip.weight"].shape)})'
                )

    def describe(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        proj = _projection(state)
        if 'latents' in proj:
            width = proj['norm_out.weight'].shape[0]
            tokens, image_dim = (
                proj['latents'].shape[1],
                proj['proj_in.weight'].shape[1],
            )
            variant = 'plus'
        else:
            width = proj['norm.weight'].shape[0]
            rows, image_dim = proj['proj.weight'].shape
            tokens, variant = rows // width, 'base'
        return _description(self, state, variant, width, tokens, image_dim)


class SD3Layout(AdapterLayout):
    """InstantX's SD3.5 layout: time-aware Resampler, per-block norms."""

    name = 'instantx-sd3'
    loader = "diffusers' SD3IPAdapterMixin.load_ip_adapter (StableDiffusion3Pipeline)"
    families = {2432: 'SD3.5 Large', 1536: 'SD3.5 Medium'}
    BLOCK = {
        'norm_ip.linear.weight',
        'norm_ip.linear.bias',
        'to_k_ip.weight',
        'to_v_ip.weight',
        'norm_q.weight',
        'norm_k.weight',
        'norm_ip_k.weight',
    }

    def validate(self, state: dict[str, torch.Tensor], source: str) -> None:
        proj = _projection(state)
        _require(
            proj,
            _PLUS_PROJECTION
            | {'time_embedding.linear_1.weight', 'layers.0.0.to_q.weight'},
            'image_proj',
            source,
        )
        _check_resampler(proj, source)
        info = self.describe(state)
        width, hidden = info['cross_attention_dim'], proj['latents'].shape[2]
        layers = _layers(state, source)
        if sorted(layers) != list(range(len(layers))):
            raise CheckpointError(
                f'{source}: ip_adapter layers must be '
                f'numbered 0, 1, 2, ...; got {sorted(layers)[:6]}'
            )
        for index, params in layers.items():
            _require(params, self.BLOCK, f'ip_adapter.{index}', source, exact=True)
            if params['to_k_ip.weight'].shape[1] != width:
                raise CheckpointError(
                    f'{source}: ip_adapter.{index}.to_k_ip.weight reads '
                    f'{params["to_k_ip.weight"].shape[1]}-d tokens, image_proj '
                    f'makes {width}-d'
                )
            if params['norm_ip.linear.weight'].shape[1] != hidden:
                raise CheckpointError(
                    f'{source}: ip_adapter.{index}.norm_ip reads a '
                    f'{params["norm_ip.linear.weight"].shape[1]}-d timestep '
                    f'embedding, image_proj makes {hidden}-d'
                )

    def describe(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        proj = _projection(state)
        return _description(
            self,
            state,
            'time-resampler',
            proj['norm_out.weight'].shape[0],
            proj['latents'].shape[1],
            proj['proj_in.weight'].shape[1],
        )


class FluxLayout(AdapterLayout):
    """XLabs' FLUX.1 layout: K/V with biases on the double-stream blocks."""

    name = 'xlabs-flux'
    loader = (
        "diffusers' FluxIPAdapterMixin.load_ip_adapter (FluxPipeline), "
        "XLabs' x-flux and ComfyUI nodes"
    )
    families = {4096: 'FLUX.1'}
    FILE_NAMES = (('image_proj.', 'ip_adapter_proj_model.'),)
    KV = {
        'to_k_ip': 'ip_adapter_double_stream_k_proj',
        'to_v_ip': 'ip_adapter_double_stream_v_proj',
    }

    def to_file(self, state: dict[str, torch.Tensor]) -> dict:
        """XLabs' names, in the order its loader needs (projection first)."""
        named = {}
        for key in sorted(state, key=lambda k: not k.startswith('image_proj.')):
            match = _LAYER.match(key)
            if match:
                kind, param = match[2].split('.')
                name = f'double_blocks.{match[1]}.processor.{self.KV[kind]}.{param}'
            else:
                name = 'ip_adapter_proj_model.' + key[len('image_proj.') :]
            named[name] = state[key]
        return named

    @classmethod
    def from_file(cls, state: dict) -> dict:
        """XLabs' names → canonical (as diffusers' loader renames them)."""
        if not any(
            k.startswith(('ip_adapter_proj_model.', 'double_blocks.')) for k in state
        ):
            return state
        canonical = {}
        for key, value in state.items():
            if key.startswith('ip_adapter_proj_model.'):
                key = 'image_proj.' + key[len('ip_adapter_proj_model.') :]
            elif key.startswith('double_blocks.'):
                for ours, theirs in cls.KV.items():
                    key = key.replace(theirs, ours)
                key = 'ip_adapter.' + key[len('double_blocks.') :].replace(
                    'processor.', ''
                )
            canonical[key] = value
        return canonical

    def validate(self, state: dict[str, torch.Tensor], source: str) -> None:
        proj = _projection(state)
        _require(proj, _BASE_PROJECTION, 'image_proj', source)
        width = proj['norm.weight'].shape[0]
        if proj['proj.weight'].shape[0] % width:
            raise CheckpointError(
                f'{source}: image_proj.proj.weight rows '
                f'{proj["proj.weight"].shape[0]} are not a multiple of the '
                f'token width {width}'
            )
        layers = _layers(state, source)
        if sorted(layers) != list(range(len(layers))):
            raise CheckpointError(
                f'{source}: ip_adapter layers must be '
                f'numbered 0, 1, 2, ...; got {sorted(layers)[:6]}'
            )
        needed = {f'{kv}.{p}' for kv in self.KV for p in ('weight', 'bias')}
        for index, params in layers.items():
            _require(params, needed, f'ip_adapter.{index}', source, exact=True)
            for kind in self.KV:
                if params[f'{kind}.weight'].shape[1] != width:
                    raise CheckpointError(
                        f'{source}: ip_adapter.{index}.{kind}.weight reads '
                        f'{params[f"{kind}.weight"].shape[1]}-d tokens, '
                        f'image_proj makes {width}-d'
                    )

    def describe(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        proj = _projection(state)
        width = proj['norm.weight'].shape[0]
        rows, image_dim = proj['proj.weight'].shape
        return _description(self, state, 'base', width, rows // width, image_dim)


def _description(
    layout: AdapterLayout,
    state: dict[str, torch.Tensor],
    variant: str,
    width: int,
    tokens: int,
    image_dim: int,
) -> dict[str, Any]:
    layers = {int(m[1]) for k in state if (m := _LAYER.match(k))}
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


LAYOUTS = {layout.name: layout for layout in (UNetLayout(), SD3Layout(), FluxLayout())}


def layout_of(state: dict[str, torch.Tensor]) -> AdapterLayout:
    """The layout of a canonical state dict, told by its keys."""
    layer_keys = [m[2] for k in state if (m := _LAYER.match(k))]
    if any(key.startswith('norm_ip.') for key in layer_keys):
        return LAYOUTS['instantx-sd3']
    if any(key.endswith('_ip.bias') for key in layer_keys):
        return LAYOUTS['xlabs-flux']
    return LAYOUTS['ip-adapter']


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
