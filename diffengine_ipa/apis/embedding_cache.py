"""Build an embedding cache: run the frozen encoders once per sample."""

import copy
import logging
import os
import os.path as osp
import time
from typing import Any

import torch
from mmengine.config import Config
from mmengine.dataset import Compose, default_collate
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from ..datasets.embedding_cache import (
    EmbeddingCache,
    cacheable_pipeline,
    cached_reference,
    cached_references,
    extra_feature_key,
    layout_key,
    settings_of,
)
from ..datasets.transforms import fill_resolution
from ..dtypes import to_dtype
from ..registry import DATASETS, MODELS

__all__ = ['build_embedding_cache']


def _pipelines(pipeline: list[dict]) -> list[tuple[str, Compose]]:
    """``[('', straight)]``, plus ``('_flipped', mirrored)`` when the
    pipeline flips: the same transforms with the flip off, then always on."""
    cacheable_pipeline(pipeline)  # refuses what cannot be cached
    steps = [dict(t) for t in pipeline if t['type'] != 'PackInputs']
    keys = ['pixel_values', 'reference_pixel_values', 'text']
    if any(step['type'] == 'ComputeTimeIds' for step in steps):
        keys.append('time_ids')
    pack = dict(type='PackInputs', input_keys=tuple(keys))
    is_flip = [step['type'] == 'RandomHorizontalFlip' for step in steps]
    variants = [
        (
            '',
            Compose(
                [s for s, flip in zip(steps, is_flip, strict=True) if not flip] + [pack]
            ),
        )
    ]
    if any(is_flip):
        mirrored = [
            dict(s, prob=1.0) if flip else s
            for s, flip in zip(steps, is_flip, strict=True)
        ]
        variants.append(('_flipped', Compose(mirrored + [pack])))
    return variants


def _sample(info: dict) -> dict:
    """A record as the cached transforms take it: its bucket, if any, and
    the reference the entry encodes (see :func:`cached_reference`)."""
    sample = dict(img_path=info['img_path'], text=info['text'])
    if info.get('bucket') is not None:
        sample['bucket'] = info['bucket']
    if cached_reference(info) is not None:
        sample['reference_path'] = cached_reference(info)
    return sample


def _other_references(
    model: Any, transforms: Any, info: dict, device: str
) -> dict[str, torch.Tensor]:
    """The image features of a record's second, third, ... reference
    (``image_features_1``, ...): the first one's are ``image_features``."""
    features = {}
    for index, path in enumerate(cached_references(info)[1:], start=1):
        pixels = transforms(dict(_sample(info), reference_path=path))['inputs'][
            'reference_pixel_values'
        ]
        features[extra_feature_key(index)] = model.image_encoder(
            pixels[None].to(device), model.image_projection.image_features
        )[0]
    return features


def _stored(name: str, value: torch.Tensor, dtype: str) -> torch.Tensor:
    """Encoder outputs in the storage precision; sizes (time ids) exact."""
    if name == 'time_ids' or not value.is_floating_point():
        return value.float()
    return value.to(to_dtype(dtype, '--dtype'))


@torch.no_grad()
def build_embedding_cache(
    cfg: Config,
    folder: str,
    batch_size: int = 8,
    dtype: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Write the cache for ``cfg``'s training set and model into ``folder``.

    Incremental: entries that exist and are whole are kept; damaged ones
    (cut short, other shapes) and a damaged manifest are rewritten.
    ``dtype`` is the storage precision (default: the family's, bf16 where
    T5 states make entries large). Returns counts, timings and the bytes per entry.
    """
    init_default_scope(cfg.get('default_scope', 'diffengine_ipa'))
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.embedding_cache = None
    pipeline = fill_resolution(dataset_cfg.pipeline, dataset_cfg.get('resolution'))
    dataset_cfg.pipeline = []
    dataset = DATASETS.build(dataset_cfg)  # records, checked; no transforms
    model = MODELS.build(cfg.model).to(device).eval()
    dtype = dtype or model.family.cache_dtype
    to_dtype(dtype, '--dtype')

    cache = EmbeddingCache(folder)
    if cache.damage is not None:
        print_log(
            f'{cache.manifest_path}: damaged ({cache.damage}); writing it again',
            logger='current',
            level=logging.WARNING,
        )
    settings = settings_of(pipeline, dtype)
    fingerprint = model.encoder_fingerprint()
    if (cache.manifest.get('settings'), cache.manifest.get('fingerprint')) != (
        settings,
        fingerprint,
    ):
        cache.manifest.pop('layout', None)  # another cache's shapes
    variants = _pipelines(pipeline)
    todo, damaged = [], 0
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        key = cache.entry_key(
            info['img_path'],
            info['text'],
            settings,
            fingerprint,
            info.get('bucket'),
            cached_references(info),
        )
        path = cache.entry_path(key)
        if not osp.isfile(path):
            todo.append((key, info))
        elif cache.entry_problem(path, info.get('bucket')) is not None:
            damaged += 1
            todo.append((key, info))
    if damaged:
        print_log(
            f'{folder}: {damaged} damaged entries (cut short or of other '
            'shapes); writing them again',
            logger='current',
            level=logging.WARNING,
        )
    layout: dict[str, dict] = {}

    start = time.perf_counter()
    for first in range(0, len(todo), batch_size):
        chunk = todo[first : first + batch_size]
        entries: list[dict] = [{} for _ in chunk]
        for suffix, transforms in variants:
            batch = default_collate([transforms(_sample(info)) for _, info in chunk])[
                'inputs'
            ]
            mean, std = model.family.latent_distribution(
                batch['pixel_values'].to(device)
            )
            outputs = dict(latent_mean=mean, latent_std=std)
            if 'time_ids' in batch:
                outputs['time_ids'] = batch['time_ids']
            if not suffix:  # prompt and reference do not flip
                outputs.update(model.family.encode_prompt(batch['text']))
                outputs['image_features'] = model.image_encoder(
                    batch['reference_pixel_values'].to(device),
                    model.image_projection.image_features,
                )
            for entry, row in zip(entries, range(len(chunk)), strict=True):
                entry.update(
                    {
                        f'{name}{suffix}': _stored(name, value[row], dtype)
                        for name, value in outputs.items()
                    }
                )
        for (_, info), entry in zip(chunk, entries, strict=True):
            entry.update(
                {
                    name: _stored(name, value, dtype)
                    for name, value in _other_references(
                        model, variants[0][1], info, device
                    ).items()
                }
            )
        for (key, info), entry in zip(chunk, entries, strict=True):
            cache.write_entry(key, entry)
            layout.setdefault(
                layout_key(info.get('bucket')),
                {name: list(value.shape) for name, value in entry.items()},
            )
    seconds = time.perf_counter() - start
    cache.write_manifest(settings, fingerprint, dict(model.sources), layout)
    entry_bytes = sum(os.path.getsize(cache.entry_path(key)) for key, _ in todo[:1])
    return dict(
        folder=folder,
        records=len(dataset),
        written=len(todo),
        rewritten=damaged,
        seconds=seconds,
        device=device,
        dtype=dtype,
        entry_bytes=entry_bytes,
    )
