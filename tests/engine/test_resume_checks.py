"""--resume and load_from: what differs from the checkpoint is followed or
refused with one line, never silently."""

import os.path as osp
import re

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from diffengine_ipa.errors import CheckpointError
from diffengine_ipa.official_format import load_adapter, save_official

from ..conftest import TINY_CONFIGS, load_tiny_config
from ..tools.test_convert import WritesAFile


class RecordLearningRate(Hook):
    def __init__(self):
        self.lrs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def resumed(tiny_families, work_dir, checkpoint, variant='sd15', **options):
    cfg = load_tiny_config(
        tiny_families[variant.split('_')[0]],
        work_dir,
        TINY_CONFIGS[variant],
        **{'train_cfg.max_epochs': 2, 'validate': False, **options},
    )
    cfg.resume, cfg.load_from = True, checkpoint
    return Runner.from_cfg(cfg)


def test_resume_follows_a_lower_learning_rate(train_tiny, tiny_families, tmp_path):
    """The NaN guard's advice: resume with a lower lr, and it is used
    (MMEngine restores the checkpoint's lr)."""
    checkpoint = osp.join(train_tiny('sd15'), 'iter_5.pth')
    saved = torch.load(checkpoint, weights_only=True)
    assert saved['optimizer']['param_groups'][0]['lr'] == 1e-4
    runner = resumed(
        tiny_families,
        tmp_path / 'run',
        checkpoint,
        **{'optim_wrapper.optimizer.lr': 1e-6},
    )
    record = RecordLearningRate()
    runner.register_hook(record)
    runner.train()
    assert record.lrs == [1e-6] * 5  # iterations 6 to 10
    (scheduler,) = runner.param_schedulers
    assert scheduler.base_values == [1e-6]
    after = torch.load(tmp_path / 'run' / 'iter_10.pth', weights_only=True)
    assert after['meta']['run']['lr'] == [1e-6]


@pytest.mark.parametrize(
    'options, message',
    [
        (
            {'train_dataloader.batch_size': 2},
            'trained at 1 samples per iteration (batch_size 1 × 1 processes); this '
            'run takes 2 (batch_size 2 × 1 processes), so resuming at its '
            'iteration would skip data',
        ),
        (
            {'train_dataloader.dataset.indices': 4},
            'trained on 5 samples, this run has 4',
        ),
    ],
)
def test_resume_that_would_skip_data_stops(
    train_tiny, tiny_families, tmp_path, options, message
):
    checkpoint = osp.join(train_tiny('sd15'), 'iter_5.pth')
    runner = resumed(tiny_families, tmp_path / 'run', checkpoint, **options)
    with pytest.raises(CheckpointError, match=re.escape(message)) as err:
        runner.train()
    assert '\n' not in str(err.value) and runner.iter == 0


def test_resume_into_another_variant_stops(train_tiny, tiny_families, tmp_path):
    checkpoint = osp.join(train_tiny('sd15'), 'iter_5.pth')
    runner = resumed(tiny_families, tmp_path / 'run', checkpoint, 'sd15_plus')
    with pytest.raises(
        CheckpointError,
        match='an IP-Adapter base file, but the config builds a plus adapter',
    ):
        runner.train()


def test_load_from_is_checked_and_takes_official_files(
    train_tiny, tiny_families, tmp_path
):
    """One runner, several files handed to load_from: an official file loads
    (weights only); --resume refuses it; a malicious pickle, a missing file
    and NaN weights are one line each, the model untouched."""
    work_dir = train_tiny('sd15')
    official = str(tmp_path / 'ip_adapter.safetensors')
    state = load_adapter(work_dir)
    save_official(state, official)
    cfg = load_tiny_config(tiny_families['sd15'], tmp_path / 'run')
    runner = Runner.from_cfg(cfg)
    model = runner.model
    runner.load_checkpoint(official)
    trained = torch.load(osp.join(work_dir, 'iter_10.pth'), weights_only=True)[
        'state_dict'
    ]
    for name, value in trained.items():
        assert torch.equal(model.state_dict()[name], value)

    runner._resume = True
    with pytest.raises(
        CheckpointError, match='an adapter file, not a training checkpoint'
    ):
        runner.load_checkpoint(official)
    runner._resume = False

    evil = tmp_path / 'evil.pth'
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': WritesAFile(str(marker))}, evil)
    nan = tmp_path / 'nan.pth'
    checkpoint = torch.load(osp.join(work_dir, 'iter_10.pth'), weights_only=True)
    next(iter(checkpoint['state_dict'].values()))[0] = float('nan')
    torch.save(checkpoint, nan)
    for path, message in (
        (evil, 'refused to load: the pickle calls io.open'),
        (tmp_path / 'missing.pth', 'no such file'),
        (nan, 'holds NaN/Inf values'),
    ):
        with pytest.raises(CheckpointError, match=message):
            runner.load_checkpoint(str(path))
    assert not marker.exists()
    for name, value in trained.items():
        assert torch.equal(model.state_dict()[name], value)
