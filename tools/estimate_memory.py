"""Estimate the GPU memory of a training step, and the batch a card fits.

    python tools/estimate_memory.py --family ARCHITECTURE [--resolution R]
        [--batch 1 2] [--frozen-dtype bf16|fp16|fp32]
        [--no-gradient-checkpointing] [--gpu-memory 80] [--out FILE.json]
    python tools/estimate_memory.py --cards [--out FILE.json]

Runs one real training step of the full-size architecture (flux1_dev,
sd35_large, sdxl, sd15, ...; random weights) on fake tensors: shapes and
dtypes, no data, no GPU. Counts the peak of every tensor allocated (frozen
weights, adapter, gradients, AdamW state, activations with fused attention),
for each batch, then fits peak = fixed + per-image · batch and gives the
largest batch that fits ``--gpu-memory`` GB, less 1 GB for the CUDA context
and fragmentation. The figures are estimates, until a GPU measures them.

``--cards`` gives the rows for the cards people have: SD1.5 at 512 px, SDXL,
SD3.5-Large and FLUX.1 at 1024, batch 1 and 4, with and without gradient
checkpointing, each under every quantization of the frozen denoiser (none,
int8, fp8, NF4) and with or without the embedding cache (which frees the
encoders), marking the 16, 24, 48 and 80 GB cards each fits (see
diffengine_ipa.apis.memory_options).
"""

import argparse
import json
import os.path as osp

from diffengine_ipa.dtypes import DTYPE_NAMES
from diffengine_ipa.errors import UserError, run_tool
from diffengine_ipa.fileio import atomic_write_bytes

GB = 1e9


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--family',
        help='the architecture (full size: random weights), '
        'e.g. sd15, sdxl, sd35_large, flux1_dev (default: '
        'none; required without --cards)',
    )
    parser.add_argument(
        '--resolution', type=int, help="default: the architecture's training resolution"
    )
    parser.add_argument(
        '--batch',
        type=int,
        nargs='+',
        default=[1, 2],
        help='batch sizes to run, two or more for the fit (default: 1 2)',
    )
    parser.add_argument(
        '--frozen-dtype',
        default='bf16',
        choices=DTYPE_NAMES,
        help='precision of the frozen weights (default: bf16)',
    )
    parser.add_argument(
        '--no-gradient-checkpointing',
        action='store_true',
        help='estimate without checkpointing (default: with)',
    )
    parser.add_argument(
        '--gpu-memory',
        type=float,
        default=80.0,
        help='GB of the card to fit (default: 80)',
    )
    parser.add_argument(
        '--cards',
        action='store_true',
        help='the card table of the docstring instead of '
        "--family's rows (default: off)",
    )
    parser.add_argument(
        '--out', help='JSON file; rows are appended (default: print only)'
    )
    return parser.parse_args()


def print_card_rows(rows: list[dict]) -> None:
    for r in rows:
        fits = ', '.join(f'{card}' for card in r['fits']) or 'none'
        print(
            f'| {r["architecture"]} | {r["resolution"]} | {r["batch"]} | '
            f'{"yes" if r["gradient_checkpointing"] else "no"} | '
            f'{r["quantize"] or "-"} | {"yes" if r["cached"] else "no"} | '
            f'{r["peak_gb"]:.1f} | {fits} |',
            flush=True,
        )


def append_rows(path: str, rows: list[dict]) -> None:
    previous = json.load(open(path)) if osp.isfile(path) else []
    atomic_write_bytes(path, json.dumps(previous + rows, indent=1).encode())
    print(f'appended to {path}')


def main() -> None:
    args = parse_args()
    if len(set(args.batch)) != len(args.batch) or min(args.batch) < 1:
        raise UserError('--batch: distinct sizes of 1 or more')
    from mmengine.registry import init_default_scope

    from diffengine_ipa.apis.memory_estimate import (
        card_rows,
        estimate_training_memory,
        largest_batch,
    )
    from diffengine_ipa.models.model_sources import disable_progress_bars
    from diffengine_ipa.models.random_models.architectures import (
        base_architectures,
    )

    init_default_scope('diffengine_ipa')
    disable_progress_bars()
    if args.cards:
        print(
            '| family | res | batch | checkpointing | quantized denoiser | '
            'cached | peak GB (estimate) | fits (GB cards) |\n'
            '|---|---|---|---|---|---|---|---|'
        )
        rows = card_rows(args.frozen_dtype, print_card_rows)
        if args.out:
            append_rows(args.out, rows)
        return
    if args.family not in base_architectures():
        raise UserError(
            f'--family {args.family!r}: use one of {", ".join(base_architectures())}'
        )
    rows = [
        estimate_training_memory(
            args.family,
            batch,
            args.resolution,
            args.frozen_dtype,
            not args.no_gradient_checkpointing,
        )
        for batch in sorted(args.batch)
    ]
    fits = largest_batch(rows, (args.gpu_memory - 1) * GB)
    for row in rows:
        row['gpu_memory_gb'] = args.gpu_memory
        row['largest_batch_estimate'] = fits
    print(
        '| family | res | batch | frozen | checkpointing | weights GB | '
        'peak GB (estimate) |\n|---|---|---|---|---|---|---|'
    )
    for r in rows:
        print(
            f'| {r["architecture"]} | {r["resolution"]} | {r["batch"]} | '
            f'{r["frozen_dtype"]} | {"yes" if r["gradient_checkpointing"] else "no"}'
            f' | {r["weight_bytes"] / GB:.1f} | {r["peak_bytes"] / GB:.1f} |'
        )
    if fits is not None:
        print(f'largest batch on a {args.gpu_memory:g} GB card (estimate): {fits}')
    if args.out:
        append_rows(args.out, rows)


if __name__ == '__main__':
    run_tool(main)
