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

from diffengine_ipa.cli import ToolParser, output_file
from diffengine_ipa.dtypes import DTYPE_NAMES
from diffengine_ipa.errors import run_tool


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


def main() -> None:
    args = parse_args()
    from diffengine_ipa.console import quiet_third_party

    quiet_third_party()  # before the imports that set off the libraries' notices
    from diffengine_ipa.apis.convert import convert_checkpoint, describe_adapter_file

    if args.info:
        print(describe_adapter_file(args.info))
        return
    print(
        convert_checkpoint(
            args.checkpoint, args.out, args.format, args.dtype, args.config, args.ema
        )
    )


if __name__ == '__main__':
    run_tool(main)
