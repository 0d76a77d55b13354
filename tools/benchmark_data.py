"""Benchmark the data side: the record index at 10⁶ records, and the loader.

    python tools/benchmark_data.py index [--records 1000000] [--images 10000]
                                         [--format jsonl|json]
                                         [--workdir DIR] [--out FILE.json]
    python tools/benchmark_data.py loader [--images 48] [--workers 0 1 2]
                                          [--batch 4] [--resolution 1024]
                                          [--workdir DIR] [--out FILE.json]

``index`` writes a JSON Lines file (``--format json``: a JSON list, one
record a line) of ``--records`` records over ``--images`` distinct JPEGs,
then, each in a fresh process: the first start
(parse, pack, check every image), a second start (the cached index: the
source's and every image's size and modification time compared), and, for
comparison, the same records as a list of Python dicts (``json.load``, what
every DataLoader worker held before). It reports seconds and the process's
peak resident memory. Each row holds the command that produced it.

``loader`` writes JPEGs of 1–4 megapixels (aspect ratios 1:2 to 2:1) and
times what a DataLoader does per image: decode, the image encoder's
preprocessing of the reference (CLIP, 224 px), resize and crop to the
sample's aspect-ratio bucket around ``--resolution``, SDXL's time ids, the
VAE tensor, batching one bucket at a time, with each ``--workers`` count.
Both print a table and append JSON rows to ``--out``.
"""

import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # benchmarks

from diffengine_ipa.cli import ToolParser, int_at_least
from diffengine_ipa.errors import run_tool


def main() -> None:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('bench', choices=['index', 'loader'])
    parser.add_argument(
        '--records',
        type=int_at_least(1),
        default=1_000_000,
        help='records of the index (default: 1000000)',
    )
    parser.add_argument(
        '--images',
        type=int_at_least(1),
        help='distinct images (default: index 10000, loader 48)',
    )
    parser.add_argument(
        '--format',
        choices=['jsonl', 'json'],
        default='jsonl',
        help='index: the annotation file, JSON Lines or a JSON list (default: jsonl)',
    )
    parser.add_argument(
        '--workers',
        type=int,
        nargs='+',
        default=[0, 1, 2],
        help='DataLoader workers to time the loader with (default: 0 1 2)',
    )
    parser.add_argument(
        '--batch',
        type=int_at_least(1),
        default=4,
        help='loader batch size (default: 4)',
    )
    parser.add_argument(
        '--resolution',
        type=int_at_least(64),
        default=1024,
        help='bucket resolution (default: 1024)',
    )
    parser.add_argument(
        '--workdir',
        default=osp.join('work_dirs', 'benchmark_data'),
        help='where the generated records and images go '
        '(default: work_dirs/benchmark_data)',
    )
    parser.add_argument(
        '--out', help='append the rows to this JSON list (default: print only)'
    )
    args = parser.parse_args()
    args.images = args.images or (10_000 if args.bench == 'index' else 48)
    os.makedirs(args.workdir, exist_ok=True)
    from benchmarks import data

    rows = (data.bench_index if args.bench == 'index' else data.bench_loader)(args)
    if args.out:
        existing = json.load(open(args.out)) if osp.isfile(args.out) else []
        with open(args.out, 'w') as f:
            json.dump(existing + rows, f, indent=1)


if __name__ == '__main__':
    run_tool(main)
