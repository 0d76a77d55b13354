"""Training through a real MMEngine Runner: checkpoints and resume."""

import copy
import glob
import math
import os
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from diffengine_ipa.engine.plain_checkpoint import to_plain

from ..conftest import load_tiny_config


def read_losses(work_dir: str) -> list[float]:
    import json

    (scalars,) = glob.glob(osp.join(work_dir, '*/vis_data/scalars.json'))
    with open(scalars) as f:
        return [json.loads(line)['loss'] for line in f if '"loss"' in line]


def test_runner_trains_tiny_config(trained_work_dir):
    losses = read_losses(trained_work_dir)
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    names = sorted(
        osp.basename(p) for p in glob.glob(osp.join(trained_work_dir, 'iter_*.pth'))
    )
    assert names == ['iter_10.pth', 'iter_5.pth']
    assert not glob.glob(osp.join(trained_work_dir, '.*tmp*'))  # atomic


@pytest.mark.parametrize(
    'variant, family, layout, width, weights',
    [
        ('sdxl', 'SDXL', 'ip-adapter', 64, 20),
        # Resampler 63 + 2 blocks × (AdaLN 2, K, V, 3 RMS norms)
        ('sd3', 'SD3', 'instantx-sd3', 32, 63 + 2 * 7),
        ('flux', 'Flux', 'xlabs-flux', 48, 4 + 2 * 4),  # K/V with biases
        ('chroma', 'Chroma', 'xlabs-flux', 48, 4 + 2 * 4),  # FLUX's blocks
        ('qwen_image', 'QwenImage', 'xlabs-flux', 40, 4 + 2 * 4),  # FLUX's form
    ],
)
def test_runner_trains_every_family(
    train_tiny, variant, family, layout, width, weights
):
    losses = read_losses(train_tiny(variant))
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    checkpoint = torch.load(
        osp.join(train_tiny(variant), 'iter_10.pth'), weights_only=True
    )
    info = checkpoint['meta']['ip_adapter']
    assert (info['family'], info['layout']) == (family, layout)
    assert info['cross_attention_dim'] == width
    assert len(info['key_map']) == len(checkpoint['state_dict']) == weights


def test_checkpoint_is_adapter_only_plain_data(trained_work_dir):
    checkpoint = torch.load(
        osp.join(trained_work_dir, 'iter_10.pth'), weights_only=True
    )  # no pickled objects inside
    state = checkpoint['state_dict']
    assert len(state) == 12 and all(
        k.startswith('image_projection.') or '_ip.' in k for k in state
    )
    info = checkpoint['meta']['ip_adapter']
    assert set(info['key_map']) == set(state)
    assert info['num_tokens'] == 4 and info['cross_attention_dim'] == 32
    assert info['image_embed_dim'] == 16
    assert checkpoint['meta']['iter'] == 10
    assert len(checkpoint['optimizer']['state']) == 12


def test_plain_conversion_keeps_history():
    import numpy as np
    from mmengine.logging import HistoryBuffer

    from diffengine_ipa.engine.plain_checkpoint import restore_history_buffers

    buffer = HistoryBuffer([1.0, 2.0], [1, 1])
    hub = to_plain(
        {
            'log_scalars': {'loss': buffer},
            'runtime_info': {'x': np.float64(1.5), 'y': np.int64(2)},
        }
    )
    assert hub['runtime_info'] == {'x': 1.5, 'y': 2}
    assert type(hub['runtime_info']['x']) is float
    restore_history_buffers(hub)
    assert hub['log_scalars']['loss'].mean() == 1.5


class RecordResume(Hook):
    """Records where training starts and how many iterations it runs."""

    def __init__(self):
        self.start, self.iters, self.optimizer = None, 0, None

    def before_train(self, runner):
        self.start = (runner.epoch, runner.iter)
        self.optimizer = copy.deepcopy(runner.optim_wrapper.state_dict())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.iters += 1


def test_resume_mid_epoch(tiny_family, tmp_path):
    work_dir = tmp_path / 'run'
    options = {
        'train_cfg.max_epochs': 2,
        'default_hooks.checkpoint.interval': 7,
        'validate': False,
    }  # resume only: validation is tested below
    Runner.from_cfg(load_tiny_config(tiny_family, work_dir, **options)).train()
    checkpoint = torch.load(work_dir / 'iter_7.pth', weights_only=True)

    cfg = load_tiny_config(tiny_family, work_dir, **options)
    cfg.resume, cfg.load_from = True, str(work_dir / 'iter_7.pth')
    runner = Runner.from_cfg(cfg)
    record = RecordResume()
    runner.register_hook(record)
    runner.train()
    # 7 of 10 iterations done: epoch 2 (index 1) continues at its 3rd batch.
    assert record.start == (1, 7)
    assert record.iters == 3 and runner.iter == 10
    saved, resumed = checkpoint['optimizer'], record.optimizer
    assert saved['param_groups'][0]['lr'] == resumed['param_groups'][0]['lr']
    for key, state in saved['state'].items():
        for name in ('exp_avg', 'exp_avg_sq', 'step'):
            assert torch.equal(state[name], resumed['state'][key][name])


def test_killed_write_keeps_previous_file(tmp_path):
    from diffengine_ipa.fileio import atomic_path

    target = tmp_path / 'ckpt.pth'
    target.write_bytes(b'old')
    try:
        with atomic_path(str(target)) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'half')
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert target.read_bytes() == b'old' and os.listdir(tmp_path) == ['ckpt.pth']


def test_non_finite_loss_guard_skips_then_stops(tiny_family, tmp_path):
    import pytest

    from diffengine_ipa.errors import TrainingError

    work_dir = tmp_path / 'run'
    cfg = load_tiny_config(
        tiny_family,
        work_dir,
        **{'train_cfg.max_epochs': 2, 'default_hooks.checkpoint.interval': 2},
    )
    assert (
        dict(type='NonFiniteLossGuardHook', max_consecutive=5) in cfg.custom_hooks
    )  # on by default
    cfg.custom_hooks[1].max_consecutive = 3
    runner = Runner.from_cfg(cfg)
    forward = runner.model.forward

    def nan_from_iteration_4(*args, **kwargs):
        losses = forward(*args, **kwargs)
        if runner.iter >= 3:
            losses['loss'] = losses['loss'] * float('nan')  # NaN gradients too
        return losses

    runner.model.forward = nan_from_iteration_4
    with pytest.raises(TrainingError) as err:
        runner.train()
    assert str(err.value).startswith(
        'training stopped at iteration 6: the loss was not finite 3 times'
    )
    # iter_4 would be written during the streak: it is not, and the one
    # written before the streak began is named, with the advice to resume it.
    assert f'last good checkpoint is {work_dir / "iter_2.pth"}' in str(err.value)
    assert f'--resume {work_dir / "iter_2.pth"}' in str(err.value)
    assert not (work_dir / 'iter_4.pth').exists()
    assert (work_dir / 'last_checkpoint').read_text() == 'iter_2.pth'
    saved = torch.load(work_dir / 'iter_2.pth', weights_only=True)
    for value in saved['state_dict'].values():
        assert value.isfinite().all()
    for value in runner.model.state_dict().values():
        assert value.isfinite().all()  # no NaN update since iteration 3


def test_guard_refuses_to_save_nan_weights(tmp_path):
    import pytest

    from diffengine_ipa.engine import NonFiniteLossGuardHook
    from diffengine_ipa.errors import TrainingError

    class FakeRunner:
        work_dir = str(tmp_path)

    checkpoint = {
        'state_dict': {'w': torch.tensor([1.0, float('nan')]), 'step': torch.tensor(3)}
    }
    with pytest.raises(TrainingError, match=r'NaN/Inf \(w, 1 tensors\)'):
        NonFiniteLossGuardHook().before_save_checkpoint(FakeRunner(), checkpoint)


def test_killed_pointer_write_keeps_previous_pointer(tmp_path, monkeypatch):
    import collections

    import pytest
    from mmengine.fileio import get_file_backend
    from mmengine.logging import MessageHub

    import diffengine_ipa.fileio as fileio
    from diffengine_ipa.engine import AtomicCheckpointHook

    class FakeRunner:
        work_dir = str(tmp_path)
        message_hub = MessageHub.get_instance('pointer_test')

        def save_checkpoint(self, out_dir, filename, *args, **kwargs):
            (tmp_path / filename).write_bytes(b'checkpoint')

    hook = AtomicCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=2)
    hook.out_dir, hook.file_backend = str(tmp_path), get_file_backend(tmp_path)
    hook.keep_ckpt_ids = collections.deque()
    runner = FakeRunner()
    for step in (1, 2, 3):
        hook._save_checkpoint_with_step(runner, step, {})
    pointer = tmp_path / 'last_checkpoint'
    assert pointer.read_text() == 'iter_3.pth'  # relative to the work dir
    assert sorted(os.listdir(tmp_path)) == [
        'iter_2.pth',
        'iter_3.pth',
        'last_checkpoint',
    ]

    def killed(src, dst):
        raise KeyboardInterrupt  # the kill lands while the pointer is written

    monkeypatch.setattr(fileio.os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 4, {})
    assert pointer.read_text() == 'iter_3.pth'  # relative to the work dir


@pytest.mark.parametrize(
    'variant, encoder, kind, size',
    [
        ('sd15', 'tiny_clip_vision_32', 'CLIPImageEncoder', 32),
        ('sd15', 'tiny_dinov2_32', 'Dinov2ImageEncoder', 32),
        ('sdxl', 'tiny_clip_vision_384', 'CLIPImageEncoder', 384),
        ('sd3', 'tiny_siglip_32', 'SiglipImageEncoder', 32),
        ('sd3', 'tiny_clip_vision_384', 'CLIPImageEncoder', 384),
        ('flux', 'tiny_clip_vision_32', 'CLIPImageEncoder', 32),
        ('flux', 'tiny_siglip_384', 'SiglipImageEncoder', 384),
    ],
)
def test_any_image_encoder_trains_with_no_pipeline_edit(
    tiny_families, tmp_path, variant, encoder, kind, size
):
    """Only the config's image encoder changes (type and folder): the data
    pipeline preprocesses at the encoder's own size, training runs, and
    validation generates through the family's pipeline with its features."""
    from diffengine_ipa.models.random_models import write_image_encoder

    from ..conftest import TINY_CONFIGS

    folder = write_image_encoder(encoder, str(tmp_path / encoder))
    cfg = load_tiny_config(
        tiny_families[variant],
        tmp_path / 'run',
        TINY_CONFIGS[variant],
        **{
            'model.image_encoder.type': kind,
            'model.image_encoder.pretrained_model_name_or_path': folder,
            'train_cfg.max_epochs': 1,
            'train_cfg.val_interval': 1,
            'custom_hooks.3.interval': 100,
            # one validation case, one denoising step: the pipeline runs
            'val_dataloader.dataset.indices': 1,
            'model.generation_cfg.steps': 1,
        },
    )
    runner = Runner.from_cfg(cfg)
    batch = next(iter(runner.train_dataloader))
    assert batch['inputs']['reference_pixel_values'].shape[-1] == size
    runner.train()
    (loss,) = read_losses(str(tmp_path / 'run'))
    assert math.isfinite(loss)
    assert runner.message_hub.get_scalar('val/ipa/clip_i').current() > -1
