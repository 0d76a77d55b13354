"""Benchmark training throughput: the reference loop against this kit's path.

    python tools/benchmark.py --family ARCHITECTURE [--batch B]
        [--resolution R] [--dtype auto|fp32|bf16|fp16] [--steps N]
        [--infer-steps 30] [--compile] [--channels-last auto|on|off]
        [--allocator auto|default|retain] [--gradient-checkpointing]
        [--out FILE.json]

ARCHITECTURE is a registered base architecture with random weights: the
full-size sd15, sdxl, sd35_large, flux1_dev, the mid_sd15 CPU stand-in, or a
tiny_* one. One process, one run: the same model (real shapes and FLOPs,
with its paired image encoder, at its training resolution unless
``--resolution``), batch and precision through (a) a loop that runs the
frozen encoders every step, as the official tutorial_train.py does, and (b)
this kit's path (precomputed encoder outputs, channels-last denoiser,
optional torch.compile, freed host memory retained). ``--dtype``,
``--channels-last`` and ``--allocator auto`` (the defaults) take what the
train script's hardware settings choose for this machine
(diffengine_ipa/engine/hardware.py), as do the threads. The reference loop
runs with the allocator the process starts with; where ours retains freed
memory, the reference loop runs again with it too ("same allocator"). Prints
a table and writes (appends to) a JSON list of rows.
"""

import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # benchmarks

from diffengine_ipa.cli import ToolParser, check_device, int_at_least, output_file
from diffengine_ipa.dtypes import DTYPE_NAMES
from diffengine_ipa.errors import run_tool
from diffengine_ipa.fileio import atomic_write_bytes


def hardware_choices(args: argparse.Namespace) -> tuple[str, bool, str]:
    """``--dtype``, ``--channels-last`` and ``--allocator``, with 'auto'
    decided as the train script decides (threads too); the decisions are
    printed. The allocator is left for our loop to set (after the reference
    loop's first run)."""
    from diffengine_ipa.engine import hardware
    from diffengine_ipa.models.random_models.architectures import architecture_spec

    caps = hardware.detect(args.device)
    requested = dict(threads='auto')
    if args.dtype == 'auto':
        requested['amp'] = 'auto'
    if args.channels_last == 'auto':
        requested['channels_last'] = 'auto'
    requested['allocator'] = args.allocator
    unet = hardware.denoiser_is_unet(
        dict(family=dict(type=architecture_spec(args.family)['family']))
    )
    decisions = hardware.decide(caps, requested, unet)
    print('\n'.join(hardware.report(caps, decisions)))
    allocator = decisions.pop('allocator').value
    hardware.apply_to_process(decisions)
    dtype = decisions['amp'].value if 'amp' in decisions else args.dtype
    channels_last = (
        decisions['channels_last'].value
        if 'channels_last' in decisions
        else args.channels_last == 'on'
    )
    return dtype, channels_last, allocator


def main() -> None:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--family',
        default='tiny_sd15',
        help='a base architecture (random weights): sd15, sdxl, sd35_large, '
        'flux1_dev, mid_sd15, tiny_* (default: tiny_sd15)',
    )
    parser.add_argument(
        '--batch', type=int_at_least(1), default=1, help='batch size (default: 1)'
    )
    parser.add_argument(
        '--resolution',
        type=int_at_least(8),
        help="default: the architecture's training resolution",
    )
    parser.add_argument(
        '--dtype',
        default='auto',
        choices=['auto', *DTYPE_NAMES],
        help="precision (default: auto, the train script's choice)",
    )
    parser.add_argument(
        '--channels-last',
        default='auto',
        choices=['auto', 'on', 'off'],
        help='our path channels-last (default: auto, for UNets)',
    )
    parser.add_argument(
        '--allocator',
        default='auto',
        choices=['auto', 'default', 'retain'],
        help='host allocator of our path (default: auto, retain on a glibc CPU)',
    )
    parser.add_argument(
        '--gradient-checkpointing',
        action='store_true',
        help='in both loops (default: off)',
    )
    parser.add_argument(
        '--on-device',
        action='store_true',
        help='initialise the random weights on the device (default: off)',
    )
    parser.add_argument(
        '--steps',
        type=int_at_least(1),
        default=5,
        help='timed training steps per loop (default: 5)',
    )
    parser.add_argument(
        '--warmup',
        type=int_at_least(0),
        default=1,
        help='untimed steps first (default: 1)',
    )
    parser.add_argument(
        '--infer-steps',
        type=int_at_least(0),
        default=30,
        help='denoising steps of the timed generation (0: skip; default: 30)',
    )
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile the denoiser in our path (default: off)',
    )
    parser.add_argument('--device', help='default: cuda if available, else cpu')
    parser.add_argument(
        '--out',
        type=output_file('.json'),
        help='JSON file; rows are appended (default: print only)',
    )
    args = parser.parse_args()
    if args.resolution is not None and args.resolution % 8:
        parser.error(
            f'argument --resolution: must be a multiple of 8, got {args.resolution}'
        )
    if args.device is not None:
        check_device(args.device)
    from benchmarks.benchmark import format_rows, run_benchmark
    from diffengine_ipa.models.model_sources import disable_progress_bars
    from diffengine_ipa.models.random_models import base_architectures

    if args.family not in base_architectures():
        parser.error(
            f'argument --family: {args.family!r} is not a base architecture '
            f'(choose from {", ".join(base_architectures())})'
        )
    disable_progress_bars()
    dtype, channels_last, allocator = hardware_choices(args)
    row = run_benchmark(
        args.family,
        args.batch,
        args.resolution,
        dtype,
        args.steps,
        args.warmup,
        args.infer_steps,
        args.compile,
        args.device,
        args.gradient_checkpointing,
        args.on_device,
        channels_last,
        allocator,
    )
    print(format_rows([row]))
    if args.out:
        rows = []
        if osp.isfile(args.out):
            with open(args.out) as f:
                rows = json.load(f)
        rows.append(row)
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        atomic_write_bytes(args.out, json.dumps(rows, indent=1).encode())
        print(f'appended to {args.out}')


if __name__ == '__main__':
    run_tool(main)
