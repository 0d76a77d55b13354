"""The data benchmarks behind ``tools/benchmark_data.py`` (its docstring says
what each measures): the record index at 10⁶ records (each start in a fresh
process: ``python benchmarks/data.py _child ANN CACHE MODE``) and the
loader."""

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


if __name__ == '__main__' and len(sys.argv) == 5 and sys.argv[1] == '_child':
    child_index(*sys.argv[2:])
