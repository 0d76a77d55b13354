"""IP-Adapter files: read them safely, convert ours, write the official layout.

The official layout, which diffusers' ``load_ip_adapter``, ComfyUI and the
official code load:

* ``.safetensors``: one flat dict, ``image_proj.proj.weight``,
  ``image_proj.norm.bias``, ``ip_adapter.1.to_k_ip.weight``, ...
* ``.bin``: the same split in two, ``{"image_proj": {...}, "ip_adapter": {...}}``.

Files a user hands us are read with safetensors or ``torch.load(...,
weights_only=True)``: a pickle that would run code is refused, not run.
"""
import os.path as osp
import pickle
import re
from typing import Any

import torch

from .errors import CheckpointError
from .fileio import atomic_path

__all__ = [
    'load_weights_file', 'find_checkpoint', 'to_official', 'rename_to_official',
    'validate_official', 'nest_official', 'save_official', 'describe_official',
    'compare_adapter', 'family_name', 'TUTORIAL_FILES'
]

# What the official tutorial_train*.py scripts (accelerate) leave in checkpoint-N/.
TUTORIAL_FILES = ('model.safetensors', 'pytorch_model.bin')

_IP_KEY = re.compile(r'^ip_adapter\.(\d+)\.(to_k_ip|to_v_ip)\.weight$')


def load_weights_file(path: str) -> tuple[dict, dict]:
    """Read a ``.safetensors`` or a torch pickle without running code.

    Returns:
        ``(contents, metadata)``; metadata is the safetensors header's.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    if path.endswith('.safetensors'):
        from safetensors import SafetensorError, safe_open
        try:
            with safe_open(path, framework='pt', device='cpu') as f:
                return ({key: f.get_tensor(key) for key in f.keys()},
                        f.metadata() or {})
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f'{path}: not a readable safetensors file '
                                  f'({err})') from None
    try:
        return torch.load(path, map_location='cpu', weights_only=True), {}
    except Exception as err:  # torch raises many kinds for a non-checkpoint
        found = re.search(r'GLOBAL ([\w.]+)', str(err))
        if isinstance(err, pickle.UnpicklingError) and found:
            raise CheckpointError(
                f'{path}: refused to load: the pickle calls {found[1]}, '
                'which could run code. Files written by this kit and official '
                'IP-Adapter files load safely; use .safetensors, or convert '
                'the file yourself where you trust it') from None
        raise CheckpointError(f'{path}: not a torch checkpoint or safetensors '
                              f'file ({type(err).__name__})') from None

def find_checkpoint(path: str) -> str:
    """A checkpoint file; the last checkpoint of a work dir; or the weights in
    an official script's ``checkpoint-N`` folder."""
    for name in TUTORIAL_FILES:
        if osp.isdir(path) and osp.isfile(osp.join(path, name)):
            return osp.join(path, name)
    if osp.isdir(path):
        pointer = osp.join(path, 'last_checkpoint')
        if not osp.isfile(pointer):
            raise CheckpointError(f'{path}: a folder without a '
                                  '`last_checkpoint` file; pass a checkpoint')
        with open(pointer) as f:
            last = f.read().strip()
        # The runner stores an absolute path; a moved work dir still works.
        candidate = osp.join(path, osp.basename(last))
        return candidate if osp.isfile(candidate) else last
    return path


def rename_to_official(state: dict[str, torch.Tensor],
                       key_map: dict[str, str]) -> dict[str, torch.Tensor]:
    """Our weights under their official names. Several of ours that map to
    one official key (Plus's K and V → ``to_kv``) are stacked along dim 0 in
    the key map's order."""
    groups: dict[str, list[torch.Tensor]] = {}
    for ours, official in key_map.items():
        groups.setdefault(official, []).append(state[ours])
    return {official: parts[0] if len(parts) == 1 else torch.cat(parts)
            for official, parts in groups.items()}


def _tutorial_to_official(contents: dict, source: str,
                          processor_names: list[str] | None) -> dict:
    """What ``tutorial_train*.py`` saves: ``unet.*`` (the whole UNet, adapter
    processors included), ``image_proj_model.*`` and ``adapter_modules.<i>.*``,
    ``adapter_modules`` being ``ModuleList(unet.attn_processors.values())``,
    so ``<i>`` is already the official number. Saved as safetensors those
    aliases of UNet tensors can vanish; then the layers are numbered from the
    UNet's own ``attn_processors`` order (``processor_names``)."""
    state = {'image_proj.' + k[len('image_proj_model.'):]: v
             for k, v in contents.items() if k.startswith('image_proj_model.')}
    aliases = {k[len('adapter_modules.'):]: v for k, v in contents.items()
               if k.startswith('adapter_modules.')}
    if aliases:
        state.update({f'ip_adapter.{k}': v for k, v in aliases.items()})
        return state
    in_unet = {k[len('unet.'):-len('.to_k_ip.weight')]
               for k in contents if k.endswith('.processor.to_k_ip.weight')}
    if not in_unet:
        raise CheckpointError(f'{source}: an official-script checkpoint without '
                              'adapter weights (no adapter_modules.* and no '
                              'unet.*.processor.to_k_ip.weight keys)')
    if processor_names is None:
        raise CheckpointError(
            f'{source}: the adapter_modules.* keys are missing (safetensors '
            'drops tensors that alias the UNet\'s); pass --config CONFIG (the '
            'base model it was trained on) so the layers are numbered from '
            "that UNet's attn_processors")
    unknown = sorted(in_unet - set(processor_names))
    if unknown:
        raise CheckpointError(f'{source}: {unknown[0]} is not a layer of the '
                              "configured UNet: another base model's checkpoint?")
    for index, name in enumerate(processor_names):
        if name in in_unet:
            for kind in ('to_k_ip', 'to_v_ip'):
                state[f'ip_adapter.{index}.{kind}.weight'] = contents[
                    f'unet.{name}.{kind}.weight']
    return state


def to_official(contents: dict, source: str,
                processor_names: list[str] | None = None
                ) -> dict[str, torch.Tensor]:
    """The flat official state dict from any file this kit understands.

    Accepts a training checkpoint of this kit (``state_dict`` plus
    ``meta['ip_adapter']['key_map']``), a nested official ``.bin`` dict, a
    flat official dict, or what the official ``tutorial_train*.py`` scripts
    save (see :func:`_tutorial_to_official`; ``processor_names`` is the
    UNet's ``attn_processors`` order, needed only when aliases are missing).
    """
    if not isinstance(contents, dict):
        raise CheckpointError(f'{source}: holds a {type(contents).__name__}, '
                              'not a checkpoint dict')
    meta = contents.get('meta')
    if isinstance(meta, dict) and 'state_dict' in contents:
        info = meta.get('ip_adapter')
        if not isinstance(info, dict) or 'key_map' not in info:
            raise CheckpointError(
                f'{source}: an MMEngine checkpoint without diffengine_ipa '
                "adapter metadata (meta['ip_adapter']); was it written by a "
                'config with AdapterCheckpointHook?')
        state = contents['state_dict']
        missing = [key for key in info['key_map'] if key not in state]
        if missing:
            raise CheckpointError(f'{source}: adapter weight {missing[0]} is '
                                  f'missing ({len(missing)} in all)')
        return rename_to_official(state, info['key_map'])
    if set(contents) >= {'image_proj', 'ip_adapter'} and all(
            isinstance(contents[k], dict) for k in ('image_proj', 'ip_adapter')):
        return {
            f'{part}.{key}': value
            for part in ('image_proj', 'ip_adapter')
            for key, value in contents[part].items()
        }
    if any(key.startswith(('image_proj.', 'ip_adapter.')) for key in contents):
        return dict(contents)
    if any(key.startswith('image_proj_model.') for key in contents):
        return _tutorial_to_official(contents, source, processor_names)
    keys = ', '.join(list(contents)[:5])
    raise CheckpointError(
        f"{source}: not an IP-Adapter checkpoint: no 'image_proj'/"
        f"'ip_adapter' keys and no diffengine_ipa metadata (keys: {keys})")


def _projection(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len('image_proj.'):]: v for k, v in state.items()
            if k.startswith('image_proj.')}


def variant_of(state: dict[str, torch.Tensor]) -> str:
    """``'base'`` or ``'plus'`` (Resampler), as diffusers' loader tells them."""
    return 'plus' if 'latents' in _projection(state) else 'base'


def validate_official(state: dict[str, torch.Tensor], source: str) -> None:
    """Check what diffusers' loader relies on; raise one line if it's off."""
    proj = _projection(state)
    needed = ({'latents', 'proj_in.weight', 'proj_out.weight', 'norm_out.weight'}
              if variant_of(state) == 'plus' else {'proj.weight', 'norm.weight'})
    if not needed <= set(proj):
        raise CheckpointError(f'{source}: image_proj lacks '
                              f'{sorted(needed - set(proj))[0]} (has '
                              f'{sorted(proj)[:4]})')
    width = describe_official(state)['cross_attention_dim']
    if variant_of(state) == 'base' and proj['proj.weight'].shape[0] % width:
        raise CheckpointError(f'{source}: image_proj.proj.weight rows '
                              f'{proj["proj.weight"].shape[0]} are not a '
                              f'multiple of the cross-attention width {width}')
    layers: dict[int, set] = {}
    for key, value in state.items():
        if key.startswith('image_proj.'):
            continue
        match = _IP_KEY.match(key)
        if not match:
            raise CheckpointError(f'{source}: unexpected key {key}')
        if value.shape[1] != width:
            raise CheckpointError(f'{source}: {key} reads {value.shape[1]}-d '
                                  f'tokens, image_proj makes {width}-d')
        layers.setdefault(int(match[1]), set()).add(match[2])
    if not layers:
        raise CheckpointError(f'{source}: no ip_adapter.<i>.to_k_ip weights')
    expected = list(range(1, 2 * len(layers), 2))
    if sorted(layers) != expected or any(
            kinds != {'to_k_ip', 'to_v_ip'} for kinds in layers.values()):
        raise CheckpointError(
            f'{source}: ip_adapter layers must be numbered 1, 3, 5, ... with '
            f'to_k_ip and to_v_ip each; got {sorted(layers)[:6]}')


def nest_official(state: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Flat official keys → ``{"image_proj": {...}, "ip_adapter": {...}}``."""
    nested: dict[str, dict] = {'image_proj': {}, 'ip_adapter': {}}
    for key, value in state.items():
        part, name = key.split('.', 1)
        nested[part][name] = value
    return nested


def save_official(state: dict[str, torch.Tensor],
                  path: str,
                  metadata: dict[str, Any] | None = None) -> None:
    """Write ``state`` atomically: flat safetensors, or nested ``.bin``."""
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path) as tmp:
        if path.endswith('.safetensors'):
            from safetensors.torch import save_file
            meta = {k: str(v) for k, v in (metadata or {}).items()}
            save_file(state, tmp, metadata={'format': 'pt', **meta})
        else:
            torch.save(nest_official(state), tmp)


def describe_official(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Variant, counts and widths of an official-layout adapter."""
    proj = _projection(state)
    if variant_of(state) == 'plus':
        width = proj['norm_out.weight'].shape[0]
        tokens = proj['latents'].shape[1]
        image_dim = proj['proj_in.weight'].shape[1]
    else:
        width = proj['norm.weight'].shape[0]
        rows, image_dim = proj['proj.weight'].shape
        tokens = rows // width
    return dict(
        variant=variant_of(state),
        layers=sum(1 for k in state if k.endswith('to_k_ip.weight')),
        tokens=tokens,
        cross_attention_dim=width,
        image_embed_dim=image_dim,
        parameters=sum(v.numel() for v in state.values()),
        dtype=str(next(iter(state.values())).dtype).replace('torch.', ''))


def family_name(cross_attention_dim: int) -> str:
    """The Stable Diffusion family a cross-attention width belongs to."""
    return {768: 'SD1.5', 1024: 'SD2', 2048: 'SDXL'}.get(cross_attention_dim,
                                                          'other')


def compare_adapter(found: dict[str, Any], expected: dict[str, Any],
                    source: str) -> None:
    """Stop with one line when an adapter does not fit the configured model.

    Args:
        found: :func:`describe_official` of the file.
        expected: The same fields for the configured model (``variant``,
            ``cross_attention_dim``, ``image_embed_dim``, ``tokens``,
            ``layers``).
        source: The file, named in the message.
    """
    if found['variant'] != expected['variant']:
        config = ('a *_plus config (IPAdapterPlusImageProjection)'
                  if found['variant'] == 'plus' else
                  'a base config (IPAdapterImageProjection)')
        raise CheckpointError(
            f'{source}: an IP-Adapter {found["variant"]} file, but the config '
            f'builds a {expected["variant"]} adapter: use {config}')
    if found['cross_attention_dim'] != expected['cross_attention_dim']:
        raise CheckpointError(
            f'{source}: the adapter was trained for a '
            f'{found["cross_attention_dim"]}-d cross-attention '
            f'({family_name(found["cross_attention_dim"])}) but the configured '
            f'base model has {expected["cross_attention_dim"]} '
            f'({family_name(expected["cross_attention_dim"])})')
    if found['image_embed_dim'] != expected['image_embed_dim']:
        what, encoders = (('hidden states', '1024: ViT-L/14, 1280: ViT-H/14, '
                           '1664: ViT-bigG/14') if found['variant'] == 'plus'
                          else ('image embeddings', '768: CLIP ViT-L/14, 1024: '
                                'ViT-H/14, 1280: ViT-bigG/14'))
        raise CheckpointError(
            f'{source}: the adapter expects {found["image_embed_dim"]}-d '
            f'{what} ({encoders}); the configured image encoder gives '
            f'{expected["image_embed_dim"]}')
    for field, what in (('tokens', 'image tokens'),
                        ('layers', 'cross-attention layers')):
        if expected.get(field) is not None and found[field] != expected[field]:
            raise CheckpointError(
                f'{source}: the adapter has {found[field]} {what}; the '
                f'configured model has {expected[field]}')
