"""Benchmark training throughput: the reference loop against this kit's path.

    python tools/benchmark.py --family ARCHITECTURE [--batch B]
        [--resolution R] [--dtype fp32|bf16|fp16] [--steps N]
        [--infer-steps 30] [--compile] [--out FILE.json]

ARCHITECTURE is a registered base architecture with random weights: the
full-size sd15, sdxl, sd35_large, flux1_dev, the mid_sd15 CPU stand-in, or a
tiny_* one. One process, one run: the same model (real shapes and FLOPs,
with its paired image encoder, at its training resolution unless
``--resolution``), batch and precision through (a) a loop that runs the
frozen encoders every step, as the official tutorial_train.py does, and (b)
this kit's path (precomputed encoder outputs, channels-last denoiser,
optional torch.compile). Prints a table and writes (appends to) a JSON list
of rows.
"""
import json
import os
import os.path as osp

from diffengine_ipa.cli import ToolParser, check_device, int_at_least, output_file
from diffengine_ipa.dtypes import DTYPE_NAMES
from diffengine_ipa.errors import run_tool
from diffengine_ipa.fileio import atomic_write_bytes
from diffengine_ipa.models.model_sources import disable_progress_bars
from diffengine_ipa.testing.benchmark import (
    benchmark_architectures,
    format_rows,
    run_benchmark,
)


def main() -> None:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('--family', default='tiny_sd15',
                        choices=benchmark_architectures(),
                        help='the architecture (random weights)')
    parser.add_argument('--batch', type=int_at_least(1), default=1)
    parser.add_argument('--resolution', type=int_at_least(8),
                        help="default: the architecture's training resolution")
    parser.add_argument('--dtype', default='fp32', choices=DTYPE_NAMES)
    parser.add_argument('--steps', type=int_at_least(1), default=5,
                        help='timed training steps per loop')
    parser.add_argument('--warmup', type=int_at_least(0), default=1)
    parser.add_argument('--infer-steps', type=int_at_least(0), default=30,
                        help='denoising steps of the timed generation (0: skip)')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the denoiser in our path')
    parser.add_argument('--device', help='default: cuda if available, else cpu')
    parser.add_argument('--out', type=output_file('.json'),
                        help='JSON file; rows are appended')
    args = parser.parse_args()
    if args.resolution is not None and args.resolution % 8:
        parser.error(f'argument --resolution: must be a multiple of 8, got '
                     f'{args.resolution}')
    if args.device is not None:
        check_device(args.device)
    disable_progress_bars()
    row = run_benchmark(args.family, args.batch, args.resolution, args.dtype,
                        args.steps, args.warmup, args.infer_steps, args.compile,
                        args.device)
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
