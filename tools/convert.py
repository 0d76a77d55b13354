"""Convert a checkpoint to its family's official adapter file, or describe one.

    python tools/convert.py CKPT [--out PATH] [--format safetensors|bin]
                            [--dtype fp16|bf16|fp32] [--config CONFIG] [--ema]
    python tools/convert.py --info FILE

CKPT is a checkpoint of this kit (``iter_50.pth``) or a work dir (its last
checkpoint); or what the official ``tutorial_train*.py`` scripts leave
(``checkpoint-N/`` with ``pytorch_model.bin`` or ``model.safetensors``). The
result is in the layout its family's loaders read: tencent-ailab's for
SD1.5/SDXL (diffusers' ``load_ip_adapter``, ComfyUI, the official code),
InstantX's for SD3.5, XLabs' for FLUX.1; it is read back and checked after it
is written, and replaces ``--out`` only after that check: a failed
conversion leaves an existing file as it was. The input is never replaced.
``--dtype`` casts the weights (default: keep theirs); ``--ema`` exports the
exponential moving average a run with ``AdapterEMAHook`` keeps.
An official-script checkpoint saved without its ``adapter_modules.*`` keys
(accelerate's ``model.safetensors``) is numbered by the UNet names it holds,
in the UNet's ``attn_processors`` order; ``--config`` is needed only when it
holds no UNet weights either: the layers are then numbered from that
config's UNet. ``--info`` prints what any official-layout file is: its
family, layout, loader, variant and sizes.
"""

import argparse
import os.path as osp

from diffengine_ipa import __version__
from diffengine_ipa.cli import ToolParser, output_file
from diffengine_ipa.dtypes import DTYPE_NAMES
from diffengine_ipa.errors import CheckpointError, run_tool


def parse_args() -> argparse.Namespace:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'checkpoint', nargs='?', help='training checkpoint, work dir or checkpoint-N'
    )
    parser.add_argument(
        '--out',
        type=output_file('.safetensors', '.bin'),
        help='output file (default: ip_adapter.<format> beside the checkpoint)',
    )
    parser.add_argument(
        '--format',
        choices=['safetensors', 'bin'],
        help='default: from --out, else safetensors',
    )
    parser.add_argument(
        '--dtype',
        choices=DTYPE_NAMES,
        help='cast the weights (default: keep their dtype)',
    )
    parser.add_argument(
        '--config',
        help='config of the base model, to number '
        'the layers of an official-script checkpoint '
        'that holds no UNet weights (default: none; training '
        'and accelerate checkpoints need none)',
    )
    parser.add_argument(
        '--ema',
        action='store_true',
        help="export the adapter's moving average "
        '(AdapterEMAHook) instead of its weights (default: '
        'the weights)',
    )
    parser.add_argument(
        '--info',
        metavar='FILE',
        help='describe an official-layout file and exit (default: convert)',
    )
    args = parser.parse_args()
    if not (args.checkpoint or args.info):
        parser.error('give a CKPT to convert, or --info FILE')
    return args


def processor_names(config: str | None) -> list[str] | None:
    """The config's UNet ``attn_processors`` order (architecture only)."""
    if config is None:
        return None
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    from diffengine_ipa.models.families import family_type
    from diffengine_ipa.models.model_sources import load_component
    from diffengine_ipa.user_config import load_user_config

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
    from diffengine_ipa.models.image_projections import (
        FACE_ID_DIM,
        PROJECTIONS_BY_VARIANT,
    )

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
        from diffengine_ipa.models.families import FAMILIES

        labels = {f.base.__name__: f.label for f in FAMILIES.values()}
        family = labels.get(metadata['family'], metadata['family'])
    return family, metadata.get('pretrained_model_name_or_path')


def print_info(path: str) -> None:
    from diffengine_ipa.official_format import LAYOUTS, describe_official, read_adapter

    state, metadata = read_adapter(path)
    info = describe_official(state)
    name, features = variant_lines(info['variant'], info['image_embed_dim'], metadata)
    family, base = trained_on(info, metadata)
    print(
        f'{path}\n'
        f'  family:          {family} '
        f'({info["cross_attention_dim"]}-d image tokens)\n'
        f'  base model:      {base or "not recorded (not written by this kit)"}\n'
        f'  layout:          {info["layout"]}, loaded by '
        f'{LAYOUTS[info["layout"]].loader}\n'
        f'  variant:         {info["variant"]} ({name})\n'
        f'  layers:          {info["layers"]} adapter layers\n'
        f'  image tokens:    {info["tokens"]}\n'
        f'  image features:  {features}\n'
        f'  parameters:      {info["parameters"]:,}\n'
        f'  dtype:           {info["dtype"]}'
    )
    for key, value in sorted(metadata.items()):
        if key != 'format':
            print(f'  metadata {key}: {value}')


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


def output_path(args: argparse.Namespace, source: str) -> tuple[str, str]:
    """``(out, format)``; never the input file itself."""
    fmt = args.format or (
        'bin' if args.out and args.out.endswith('.bin') else 'safetensors'
    )
    out = args.out or osp.join(osp.dirname(source), f'ip_adapter.{fmt}')
    if not out.endswith(f'.{fmt}'):
        raise CheckpointError(f'--out {out}: a {fmt} file must end in .{fmt}')
    if osp.exists(out) and osp.samefile(out, source):
        raise CheckpointError(
            f'{out}: is the input file; converting it would replace it. Pass '
            '--out with another file name'
        )
    return out, fmt


def main() -> None:
    args = parse_args()
    from diffengine_ipa.dtypes import to_dtype
    from diffengine_ipa.official_format import (
        cast_adapter,
        describe_official,
        find_checkpoint,
        load_weights_file,
        save_official,
        to_official,
        validate_official,
    )

    if args.info:
        print_info(args.info)
        return
    source = find_checkpoint(args.checkpoint)
    out, _ = output_path(args, source)

    # Every check before anything is written: the file is read, converted
    # and validated (finite, shapes, keys), cast, and only then saved; the
    # save is read back and compared before it replaces ``out``.
    contents, _ = load_weights_file(source)
    if args.ema:
        contents = with_ema_weights(contents, source)
    state = to_official(contents, source, processor_names(args.config))
    validate_official(state, source)
    if args.dtype:
        state = cast_adapter(state, to_dtype(args.dtype), source)
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
    print(
        f'wrote {out} ({osp.getsize(out) / 2**20:.1f} MiB): '
        f'{metadata.get("faceid_variant") or summary["variant"]} adapter for {family} '
        + (f'(trained on {base}) ' if base else '')
        + f'({summary["layout"]} layout), {summary["layers"]} adapter layers, '
        f'{summary["tokens"]} image tokens, '
        f'{summary["image_embed_dim"]}-d image features, '
        f'{summary["parameters"]:,} parameters ({summary["dtype"]})'
    )


if __name__ == '__main__':
    run_tool(main)
