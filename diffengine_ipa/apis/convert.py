"""Convert a training checkpoint to its family's official adapter file, and
describe such a file: what ``tools/convert.py`` runs.

Every check comes before anything is written: the checkpoint is read,
converted and validated (finite, shapes, keys), cast, and only then saved;
the save is read back and compared before it replaces the output.
"""

import os.path as osp

from .. import __version__
from ..errors import CheckpointError

__all__ = ['convert_checkpoint', 'describe_adapter_file', 'output_path']


def processor_names(config: str | None) -> list[str] | None:
    """The config's UNet ``attn_processors`` order (architecture only)."""
    if config is None:
        return None
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    from ..models.families import family_type
    from ..models.model_sources import load_component
    from ..user_config import load_user_config

    model = load_user_config(config).model
    if family_type(model) not in ('SD15', 'SDXL'):
        raise CheckpointError(
            f'--config {config}: the official scripts train '
            'SD1.5 and SDXL adapters only'
        )
    source = model.pretrained_model_name_or_path
    with init_empty_weights():
        unet = load_component(
            UNet2DConditionModel, source, 'unet', low_cpu_mem_usage=True
        )
    return list(unet.attn_processors)


def variant_lines(variant: str, width: int, metadata: dict) -> tuple[str, str]:
    """What a file of ``variant`` is (the projection's description, or the
    FaceID variant the kit's metadata records: FaceID-Plus and PlusV2 have
    the same keys, so a file without it, a published ``.bin``, may be
    either) and the image features it reads (``width`` wide)."""
    from ..models.image_projections import FACE_ID_DIM, PROJECTIONS_BY_VARIANT

    projection = PROJECTIONS_BY_VARIANT[variant]
    name = metadata.get('faceid_variant') or projection.description
    features = {
        'pooled': 'pooled image embeddings',
        'hidden_states': 'hidden states',
        None: 'face embedding',
    }[projection.image_features]
    if getattr(projection, 'face_id', False) and projection.image_features:
        features += f' of the face crop, and the {FACE_ID_DIM}-d face embedding'
    return name, f'{width}-d {features}'


def trained_on(summary: dict, metadata: dict) -> tuple[str, str | None]:
    """The file's family (its label, from the kit's training metadata when
    there is some, else what the widths name: tiny or custom bases name
    none, and FLUX.1, Kontext and Chroma files share theirs) and the base
    model it was trained on (path or hub id, as recorded at training; None
    for files this kit did not write)."""
    family = summary['family']
    if metadata.get('family'):
        from ..models.families import FAMILIES

        labels = {f.base.__name__: f.label for f in FAMILIES.values()}
        family = labels.get(metadata['family'], metadata['family'])
    return family, metadata.get('pretrained_model_name_or_path')


def describe_adapter_file(path: str) -> str:
    """What an official-layout file is (``tools/convert.py --info``): its
    family, base model, layout and loader, variant, sizes and metadata."""
    from ..official_format import LAYOUTS, describe_official, read_adapter

    state, metadata = read_adapter(path)
    info = describe_official(state)
    name, features = variant_lines(info['variant'], info['image_embed_dim'], metadata)
    family, base = trained_on(info, metadata)
    lines = [
        path,
        f'  family:          {family} ({info["cross_attention_dim"]}-d image tokens)',
        f'  base model:      {base or "not recorded (not written by this kit)"}',
        f'  layout:          {info["layout"]}, loaded by '
        f'{LAYOUTS[info["layout"]].loader}',
        f'  variant:         {info["variant"]} ({name})',
        f'  layers:          {info["layers"]} adapter layers',
        f'  image tokens:    {info["tokens"]}',
        f'  image features:  {features}',
        f'  parameters:      {info["parameters"]:,}',
        f'  dtype:           {info["dtype"]}',
    ]
    lines += [
        f'  metadata {key}: {value}'
        for key, value in sorted(metadata.items())
        if key != 'format'
    ]
    return '\n'.join(lines)


def with_ema_weights(contents: dict, source: str) -> dict:
    """The checkpoint with its averaged adapter weights as ``state_dict``."""
    ema = contents.get('ema_state_dict') if isinstance(contents, dict) else None
    if not ema:
        raise CheckpointError(
            f'{source}: no EMA weights (ema_state_dict); train with '
            "custom_hooks=[..., dict(type='AdapterEMAHook')] or convert "
            'without --ema'
        )
    weights = {
        k[len('module.') :]: v for k, v in ema.items() if k.startswith('module.')
    }
    return dict(contents, state_dict=weights)


def output_path(out: str | None, fmt: str | None, source: str) -> tuple[str, str]:
    """``(out, format)``: ``fmt`` from ``out``'s suffix when not given,
    ``ip_adapter.<fmt>`` beside ``source`` when ``out`` is not; never the
    input file itself."""
    fmt = fmt or ('bin' if out and out.endswith('.bin') else 'safetensors')
    out = out or osp.join(osp.dirname(source), f'ip_adapter.{fmt}')
    if not out.endswith(f'.{fmt}'):
        raise CheckpointError(f'--out {out}: a {fmt} file must end in .{fmt}')
    if osp.exists(out) and osp.samefile(out, source):
        raise CheckpointError(
            f'{out}: is the input file; converting it would replace it. Pass '
            '--out with another file name'
        )
    return out, fmt


def convert_checkpoint(
    checkpoint: str,
    out: str | None = None,
    fmt: str | None = None,
    dtype: str | None = None,
    config: str | None = None,
    ema: bool = False,
) -> str:
    """Write ``checkpoint``'s adapter (a kit checkpoint, a work dir or an
    official script's ``checkpoint-N``) as its family's official file.

    Args:
        checkpoint: The checkpoint, or a work dir (its last checkpoint).
        out: The file to write (default: ``ip_adapter.<fmt>`` beside it).
        fmt: ``'safetensors'`` or ``'bin'`` (default: from ``out``).
        dtype: Cast the weights to this precision name (default: keep).
        config: A config whose UNet numbers the layers of an official-script
            checkpoint that holds no UNet weights.
        ema: Export the moving average of ``AdapterEMAHook`` instead.

    Returns:
        One line saying what was written.
    """
    from ..dtypes import to_dtype
    from ..official_format import (
        cast_adapter,
        describe_official,
        find_checkpoint,
        load_weights_file,
        save_official,
        to_official,
        validate_official,
    )

    source = find_checkpoint(checkpoint)
    out, _ = output_path(out, fmt, source)
    contents, _ = load_weights_file(source)
    if ema:
        contents = with_ema_weights(contents, source)
    state = to_official(contents, source, processor_names(config))
    validate_official(state, source)
    if dtype:
        state = cast_adapter(state, to_dtype(dtype), source)
    meta = contents.get('meta', {}) if isinstance(contents, dict) else {}
    info = meta.get('ip_adapter', {}) if isinstance(meta, dict) else {}
    info = {k: v for k, v in info.items() if k != 'key_map' and v is not None}
    summary = describe_official(state)
    metadata = dict(
        info,
        variant=summary['variant'],
        num_tokens=summary['tokens'],
        layout=summary['layout'],
        family=info.get('family', summary['family']),
        cross_attention_dim=summary['cross_attention_dim'],
        image_embed_dim=summary['image_embed_dim'],
        kit=f'diffengine_ipa {__version__}',
    )
    if isinstance(meta, dict) and meta.get('experiment_name'):
        metadata['config'] = meta['experiment_name']
    save_official(state, out, metadata)
    family, base = trained_on(summary, metadata)
    return (
        f'wrote {out} ({osp.getsize(out) / 2**20:.1f} MiB): '
        f'{metadata.get("faceid_variant") or summary["variant"]} adapter for {family} '
        + (f'(trained on {base}) ' if base else '')
        + f'({summary["layout"]} layout), {summary["layers"]} adapter layers, '
        f'{summary["tokens"]} image tokens, '
        f'{summary["image_embed_dim"]}-d image features, '
        f'{summary["parameters"]:,} parameters ({summary["dtype"]})'
    )
