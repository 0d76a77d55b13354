"""Aspect-ratio buckets: sizes, assignment, the crop and time ids, batches."""

import json

import numpy as np
import pytest
from mmengine.dataset import DefaultSampler
from PIL import Image

from diffengine_ipa.datasets import (
    AspectRatioBuckets,
    BucketBatchSampler,
    ComputeTimeIds,
    IPAdapterDataset,
    LoadImage,
    ResizeCropToBucket,
)
from diffengine_ipa.datasets.embedding_cache import EmbeddingCache
from diffengine_ipa.sample_generators import sample_generator

from .bad_inputs import noise

SIZES = [
    (96, 64),
    (64, 96),
    (80, 80),
    (128, 64),
    (64, 128),
    (100, 70),
    (70, 100),
    (90, 90),
    (120, 66),
    (66, 120),
    (88, 72),
    (72, 88),
]


def test_buckets_have_about_the_pixels_of_the_resolution():
    buckets = AspectRatioBuckets(1024, 64, max_aspect=4)
    assert (1024, 1024) in buckets.sizes and (640, 1600) in buckets.sizes
    for height, width in buckets.sizes:
        assert height % 64 == 0 and width % 64 == 0
        assert 1024**2 - 64 * max(height, width) < height * width <= 1024**2
        assert max(height, width) <= 4 * min(height, width)


def test_each_image_takes_the_bucket_that_crops_least():
    buckets = AspectRatioBuckets(1024, 64, max_aspect=2)
    rng = np.random.default_rng(0)
    sizes = np.stack([rng.integers(500, 3000, 500), rng.integers(500, 3000, 500)], 1)
    sizes = sizes[
        np.maximum(sizes[:, 0] / sizes[:, 1], sizes[:, 1] / sizes[:, 0]) <= 1.9
    ]
    for (width, height), b in zip(sizes, buckets.assign(sizes), strict=True):
        b_height, b_width = buckets.sizes[b]
        scale = max(b_height / height, b_width / width)
        cropped = max(round(height * scale) - b_height, round(width * scale) - b_width)
        assert cropped < 64 * 1.5  # less than about one bucket step
        best = min(abs(np.log(width / height * h / w)) for h, w in buckets.sizes)
        assert abs(np.log(width / height * b_height / b_width)) <= best + 1e-9


def bucketed_dataset(tmp_path, **kwargs):
    records = []
    for i, size in enumerate(SIZES):
        noise(size).save(tmp_path / f'{i}.png')
        records.append({'image_file': f'{i}.png', 'text': f'image {i}'})
    (tmp_path / 'data.json').write_text(json.dumps(records))
    return IPAdapterDataset(
        ann_file=str(tmp_path / 'data.json'),
        min_image_side=32,
        buckets=dict(resolution=64, step=16, max_aspect=2),
        pipeline=[LoadImage(), ResizeCropToBucket(random_crop=True), ComputeTimeIds()],
        **kwargs,
    )


def test_the_crop_fits_the_bucket_and_time_ids_follow_it(tmp_path):
    dataset = bucketed_dataset(tmp_path)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        sample = dataset[i]
        height, width = info['bucket']
        assert sample['img'].size == (width, height)
        top, left = sample['crop_top_left']
        original = Image.open(info['img_path']).convert('RGB')
        assert sample['time_ids'].tolist() == [
            original.height,
            original.width,
            top,
            left,
            height,
            width,
        ]
        resized = original.resize(
            sample['resized_shape'][::-1], Image.Resampling.BILINEAR
        )
        assert np.array_equal(
            np.asarray(sample['img']),
            np.asarray(resized.crop((left, top, left + width, top + height))),
        )
    generator = sample_generator(0, 0, 0, stream='data')
    assert (
        ResizeCropToBucket(random_crop=True)(
            dict(img=Image.new('RGB', (300, 64)), bucket=(64, 64), generator=generator)
        )['crop_top_left'][1]
        > 0
    )


def plan(dataset, rank, world_size, epoch=0, batch_size=2, **kwargs):
    sampler = DefaultSampler(dataset, shuffle=True, seed=3)
    sampler.rank, sampler.world_size = rank, world_size
    sampler.set_epoch(epoch)
    return list(BucketBatchSampler(sampler, batch_size, **kwargs))


def test_batches_are_one_bucket_and_ranks_disjoint(tmp_path):
    dataset = bucketed_dataset(tmp_path)
    assert len(set(dataset.bucket_ids.tolist())) >= 3
    ranks = [plan(dataset, rank, 2) for rank in range(2)]
    assert len(ranks[0]) == len(ranks[1]) > 0
    seen = [i for batches in ranks for batch in batches for i in batch]
    assert len(seen) == len(set(seen))
    for batch in ranks[0] + ranks[1]:
        assert len(batch) == 2
        assert len({int(dataset.bucket_ids[i]) for i in batch}) == 1
    assert ranks[0] == plan(dataset, 0, 2)  # reproducible
    assert ranks[0] != plan(dataset, 0, 2, epoch=1)
    padded = plan(dataset, 0, 1, batch_size=3, pad=True)
    assert sum(map(len, padded)) >= len(dataset)


def test_cache_keys_include_the_bucket_and_reference(tmp_path):
    noise().save(tmp_path / 'a.png')
    noise((64, 96)).save(tmp_path / 'b.png')
    cache, path = EmbeddingCache(str(tmp_path / 'cache')), str(tmp_path / 'a.png')
    keys = {
        cache.entry_key(path, 'x', {}, 'f'),
        cache.entry_key(path, 'x', {}, 'f', (64, 64)),
        cache.entry_key(path, 'x', {}, 'f', (48, 80)),
        cache.entry_key(path, 'x', {}, 'f', (64, 64), str(tmp_path / 'b.png')),
    }
    assert len(keys) == 4


def test_a_bucket_sampler_needs_buckets(tmp_path):
    dataset = bucketed_dataset(tmp_path)
    dataset.buckets = None
    with pytest.raises(Exception, match='needs a dataset with buckets'):
        plan(dataset, 0, 1)
