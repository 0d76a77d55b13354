"""Exact resume holds with DataLoader workers and random transforms: each
sample's crop and flip come from its own (seed, epoch, index) generator."""

import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from diffengine_ipa.datasets import IPAdapterDataset
from diffengine_ipa.datasets.transforms import (
    LoadImage,
    PackInputs,
    RandomCrop,
    RandomHorizontalFlip,
    ResizeShortEdge,
    ToVAEInput,
)

from ..conftest import REPO, load_tiny_config

MINI = osp.join(REPO, 'data/mini_dataset/data.json')


def samples_by_epoch(workers: int) -> dict[tuple[int, int], torch.Tensor]:
    """``{(epoch, sample_idx): pixels}`` over two epochs, the epoch set on
    the dataset while persistent workers keep running."""
    dataset = IPAdapterDataset(
        ann_file=MINI,
        pipeline=[
            LoadImage(),
            ResizeShortEdge(48),
            RandomCrop(32),
            RandomHorizontalFlip(),
            ToVAEInput(),
            PackInputs(input_keys=('pixel_values',), meta_keys=('sample_idx',)),
        ],
    )
    loader = DataLoader(
        dataset, batch_size=2, num_workers=workers, persistent_workers=workers > 0
    )
    seen = {}
    for epoch in range(2):
        dataset.set_draw_epoch(seed=7, epoch=epoch)
        for batch in loader:
            for index, pixels in zip(
                batch['data_samples']['sample_idx'],
                batch['inputs']['pixel_values'],
                strict=True,
            ):
                seen[epoch, int(index)] = pixels
    return seen


def test_random_transforms_do_not_depend_on_workers():
    alone, pooled = samples_by_epoch(0), samples_by_epoch(2)
    assert alone.keys() == pooled.keys() and len(alone) == 10
    for key, pixels in alone.items():
        assert torch.equal(pixels, pooled[key]), key
    assert any(not torch.equal(alone[0, i], alone[1, i]) for i in range(5))


class RecordLosses(Hook):
    def __init__(self):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses[runner.iter + 1] = outputs['loss'].item()


def train(tiny_family, work_dir, resume_from=None) -> dict[int, float]:
    pipeline = [
        dict(type='LoadImage'),
        dict(type='PreprocessReference'),
        dict(type='ResizeShortEdge', size=72),
        dict(type='RandomCrop', size=64),
        dict(type='RandomHorizontalFlip'),
        dict(type='ToVAEInput'),
        dict(type='PackInputs'),
    ]
    cfg = load_tiny_config(
        tiny_family,
        work_dir,
        **{
            'train_cfg.max_epochs': 2,
            'default_hooks.checkpoint.interval': 7,
            'train_dataloader.num_workers': 2,
            'train_dataloader.persistent_workers': True,
            'train_dataloader.dataset.pipeline': pipeline,
        },
    )
    if resume_from:
        cfg.resume, cfg.load_from = True, resume_from
    runner = Runner.from_cfg(cfg)
    record = RecordLosses()
    runner.register_hook(record)
    runner.train()
    return record.losses


def test_exact_resume_with_workers_and_random_transforms(tiny_family, tmp_path):
    """Stopped at iteration 7 (mid-epoch 2), resumed with 2 persistent
    workers: iterations 8 to 10 have the uninterrupted run's losses."""
    whole = train(tiny_family, tmp_path / 'whole')
    assert sorted(whole) == list(range(1, 11))
    resumed = train(
        tiny_family, tmp_path / 'resumed', str(tmp_path / 'whole' / 'iter_7.pth')
    )
    assert sorted(resumed) == [8, 9, 10]
    for step, loss in resumed.items():
        assert loss == whole[step], (step, loss, whole[step])
