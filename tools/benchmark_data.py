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

import argparse
import json
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from diffengine_ipa.cli import ToolParser, int_at_least
from diffengine_ipa.errors import run_tool


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_jpeg(path: str, width: int, height: int, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(
        0, 256, (max(1, height // 32), max(1, width // 32), 3), dtype=np.uint8
    )  # smooth content, a photo's size
    Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC).save(
        path, quality=90
    )


# --- the index ------------------------------------------------------------------


def write_index_dataset(
    root: str, records: int, images: int, kind: str = 'jsonl'
) -> str:
    ann = osp.join(root, f'records_{records}.{kind}')
    if osp.isfile(ann):
        return ann
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    for i in range(images):
        path = osp.join(root, 'images', f'{i:07d}.jpg')
        if not osp.isfile(path):
            _write_jpeg(path, 96, 80, i)
    with open(ann + '.tmp', 'w') as f:
        if kind == 'json':
            f.write('[\n')
        for i in range(records):
            f.write(
                json.dumps(
                    {
                        'image_file': f'images/{i % images:07d}.jpg',
                        'text': f'photo {i}: a caption of some forty characters or so',
                    }
                )
                + (',\n' if kind == 'json' and i < records - 1 else '\n')
            )
        if kind == 'json':
            f.write(']\n')
    os.replace(ann + '.tmp', ann)
    return ann


def child_index(ann: str, cache: str, mode: str) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    from diffengine_ipa.datasets import IPAdapterDataset

    start = time.perf_counter()  # after the imports, the same in each mode
    if mode == 'dicts':
        with open(ann) as f:
            if ann.endswith('.json'):
                records = json.load(f)
            else:
                records = [json.loads(line) for line in f]
        count = len(records)
    else:
        dataset = IPAdapterDataset(ann_file=ann, index_cache=cache, min_image_side=32)
        count = len(dataset)
        rng = np.random.default_rng(0)
        for i in rng.integers(0, count, 1000):  # as a worker fetches
            dataset.get_data_info(int(i))
    print(
        json.dumps(
            dict(
                mode=mode,
                records=count,
                seconds=round(time.perf_counter() - start, 2),
                peak_rss_mb=round(_peak_rss_mb(), 1),
            )
        )
    )


def bench_index(args: argparse.Namespace) -> list[dict]:
    root = args.workdir
    t = time.perf_counter()
    ann = write_index_dataset(root, args.records, args.images, args.format)
    print(f'dataset ready in {time.perf_counter() - t:.1f} s: {ann}')
    cache = tempfile.mkdtemp(prefix='index_cache_', dir=root)
    rows = []
    for mode in ('first start', 'second start', 'dicts'):
        out = subprocess.run(
            [sys.executable, __file__, '_child', ann, cache, mode],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(
            dict(
                json.loads(out.stdout.strip().splitlines()[-1]),
                images=args.images,
                bench='index',
                format=args.format,
                command=' '.join(['python', 'tools/benchmark_data.py', *sys.argv[1:]]),
                cpus=os.cpu_count(),
                load_average=round(os.getloadavg()[0], 1),
            )
        )
    baseline = subprocess.run(
        [
            sys.executable,
            '-c',
            'import resource, diffengine_ipa.datasets; '
            'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)',
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    imports = float(baseline.stdout.strip().splitlines()[-1])
    size = sum(
        osp.getsize(osp.join(d, f)) for d, _, files in os.walk(cache) for f in files
    )
    print(
        f'\n{args.records:,} records, {args.images:,} distinct images; '
        f'imports alone: {imports:.0f} MB; index on disk: '
        f'{size / 2**20:.0f} MB'
    )
    print('| start | seconds | peak RSS MB | over imports MB |\n|---|---|---|---|')
    for row in rows:
        row.update(
            imports_rss_mb=round(imports, 1), index_disk_mb=round(size / 2**20, 1)
        )
        print(
            f'| {row["mode"]} | {row["seconds"]} | {row["peak_rss_mb"]} | '
            f'{row["peak_rss_mb"] - imports:.0f} |'
        )
    return rows


# --- the loader -------------------------------------------------------------------


def write_photos(root: str, count: int) -> str:
    folder = osp.join(root, 'photos')
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        path = osp.join(folder, f'{i:05d}.jpg')
        if osp.isfile(path):
            continue
        pixels = rng.uniform(1e6, 4e6)
        aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        width = int((pixels * aspect) ** 0.5)
        _write_jpeg(path, width, int(pixels / width), i)
        with open(osp.join(folder, f'{i:05d}.txt'), 'w') as f:
            f.write(f'photo {i}')
    return folder


def bench_loader(args: argparse.Namespace) -> list[dict]:
    import torch
    from mmengine.dataset import DefaultSampler, default_collate
    from mmengine.registry import init_default_scope
    from torch.utils.data import DataLoader

    from diffengine_ipa.datasets import BucketBatchSampler, IPAdapterDataset

    init_default_scope('diffengine_ipa')
    folder = write_photos(args.workdir, args.images)
    encoder = dict(
        type='CLIPImageEncoder',
        pretrained_model_name_or_path='random:clip-vit-large-patch14',
    )
    pipeline = [
        dict(type='LoadImage'),
        dict(type='PreprocessReference', image_encoder=encoder),
        dict(type='ResizeCropToBucket', random_crop=True),
        dict(type='RandomHorizontalFlip'),
        dict(type='ComputeTimeIds'),
        dict(type='ToVAEInput'),
        dict(
            type='PackInputs',
            input_keys=('pixel_values', 'reference_pixel_values', 'text', 'time_ids'),
        ),
    ]
    dataset = IPAdapterDataset(
        ann_file=folder,
        pipeline=pipeline,
        index_cache=osp.join(args.workdir, 'index_cache'),
        buckets=dict(resolution=args.resolution, step=64, max_aspect=2.0),
    )
    rows = []
    torch.set_num_threads(1)
    for workers in args.workers:
        sampler = DefaultSampler(dataset, shuffle=True, seed=0)
        loader = DataLoader(
            dataset,
            num_workers=workers,
            collate_fn=default_collate,
            batch_sampler=BucketBatchSampler(sampler, args.batch, pad=True),
        )
        start, images = time.perf_counter(), 0
        for batch in loader:
            images += len(batch['inputs']['text'])
        seconds = time.perf_counter() - start
        rows.append(
            dict(
                bench='loader',
                workers=workers,
                images=images,
                batch=args.batch,
                resolution=args.resolution,
                seconds=round(seconds, 2),
                images_per_s=round(images / seconds, 2),
                cpus=os.cpu_count(),
                machine=platform.machine(),
            )
        )
    print(
        f'\n{len(dataset)} JPEGs of 1-4 MP, buckets around '
        f'{args.resolution}², batch {args.batch}, {os.cpu_count()} CPUs'
    )
    print('| workers | images/s |\n|---|---|')
    for row in rows:
        print(f'| {row["workers"]} | {row["images_per_s"]} |')
    return rows


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == '_child':
        child_index(*sys.argv[2:])
        return
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
    rows = (bench_index if args.bench == 'index' else bench_loader)(args)
    if args.out:
        existing = json.load(open(args.out)) if osp.isfile(args.out) else []
        with open(args.out, 'w') as f:
            json.dump(existing + rows, f, indent=1)


if __name__ == '__main__':
    run_tool(main)
