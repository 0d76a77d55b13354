"""Estimate the GPU memory of a training step, and the batch a card fits.

    python tools/estimate_memory.py --family ARCHITECTURE [--resolution R]
        [--batch 1 2] [--frozen-dtype bf16|fp16|fp32]
        [--no-gradient-checkpointing] [--gpu-memory 80] [--out FILE.json]

Runs one real training step of the full-size architecture (flux1_dev,
sd35_large, sdxl, sd15, ...; random weights) on fake tensors: shapes and
dtypes, no data, no GPU. Counts the peak of every tensor allocated (frozen
weights, adapter, gradients, AdamW state, activations with fused attention),
for each batch, then fits peak = fixed + per-image · batch and gives the
largest batch that fits ``--gpu-memory`` GB, less 1 GB for the CUDA context
and fragmentation. The figures are estimates, until a GPU measures them.
"""
import argparse
import json
import os.path as osp

from diffengine_ipa.dtypes import DTYPE_NAMES
from diffengine_ipa.errors import UserError, run_tool
from diffengine_ipa.fileio import atomic_write_bytes
from diffengine_ipa.models.model_sources import disable_progress_bars

GB = 1e9


def parse_args() -> argparse.Namespace:
    from diffengine_ipa.testing.benchmark import benchmark_architectures
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--family', required=True,
                        choices=benchmark_architectures(),
                        help='the architecture (full size: random weights)')
    parser.add_argument('--resolution', type=int,
                        help="default: the architecture's training resolution")
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 2],
                        help='batch sizes to run (two or more for the fit)')
    parser.add_argument('--frozen-dtype', default='bf16', choices=DTYPE_NAMES)
    parser.add_argument('--no-gradient-checkpointing', action='store_true')
    parser.add_argument('--gpu-memory', type=float, default=80.0,
                        help='GB of the card to fit (default: 80)')
    parser.add_argument('--out', help='JSON file; rows are appended')
    return parser.parse_args()


def largest_batch(rows: list[dict], budget: float) -> int | None:
    """The largest batch under ``budget`` bytes, by the linear fit."""
    if len(rows) < 2:
        return None
    (b0, p0), (b1, p1) = [(r['batch'], r['peak_bytes']) for r in rows[:2]]
    per_image = (p1 - p0) / (b1 - b0)
    fixed = p0 - per_image * b0
    return int((budget - fixed) // per_image) if per_image > 0 else None


def main() -> None:
    args = parse_args()
    if len(set(args.batch)) != len(args.batch) or min(args.batch) < 1:
        raise UserError('--batch: distinct sizes of 1 or more')
    from mmengine.registry import init_default_scope

    from diffengine_ipa.testing.memory_estimate import estimate_training_memory
    init_default_scope('diffengine_ipa')
    disable_progress_bars()
    rows = [estimate_training_memory(
        args.family, batch, args.resolution, args.frozen_dtype,
        not args.no_gradient_checkpointing) for batch in sorted(args.batch)]
    fits = largest_batch(rows, (args.gpu_memory - 1) * GB)
    for row in rows:
        row['gpu_memory_gb'] = args.gpu_memory
        row['largest_batch_estimate'] = fits
    print('| family | res | batch | frozen | checkpointing | weights GB | '
          'peak GB (estimate) |\n|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["architecture"]} | {r["resolution"]} | {r["batch"]} | '
              f'{r["frozen_dtype"]} | {"yes" if r["gradient_checkpointing"] else "no"}'
              f' | {r["weight_bytes"] / GB:.1f} | {r["peak_bytes"] / GB:.1f} |')
    if fits is not None:
        print(f'largest batch on a {args.gpu_memory:g} GB card (estimate): {fits}')
    if args.out:
        previous = json.load(open(args.out)) if osp.isfile(args.out) else []
        atomic_write_bytes(args.out, json.dumps(previous + rows, indent=1).encode())
        print(f'appended to {args.out}')


if __name__ == '__main__':
    run_tool(main)
