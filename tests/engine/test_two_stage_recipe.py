"""The two-stage SDXL recipe, as configs, on a folder of photos + captions:
stage 1 square, stage 2 from its converted adapter with buckets and EMA."""

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from PIL import Image

from ..conftest import REPO, load_tiny_config
from ..tools.helpers import run_tool_in_process

STAGE1 = f'{REPO}/configs/ip_adapter/sdxl_photos_stage1_512.py'
STAGE2 = f'{REPO}/configs/ip_adapter/sdxl_photos_stage2_buckets.py'


def photo_folder(root):
    rng = np.random.default_rng(0)
    root.mkdir()
    for i, size in enumerate(
        [(96, 64), (96, 64), (64, 96), (64, 96), (80, 80), (80, 80)]
    ):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f'{i}.jpg')
        (root / f'{i}.txt').write_text(f'photo number {i}')
    return str(root)


class Record(Hook):
    def __init__(self):
        self.shapes, self.time_ids, self.lrs = [], [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        inputs = data_batch['inputs']
        self.shapes.append(tuple(inputs['pixel_values'][0].shape[-2:]))
        self.time_ids.append(
            torch.stack(inputs['time_ids'])
            if isinstance(inputs['time_ids'], list)
            else inputs['time_ids']
        )
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def run(config, tiny, work_dir, photos, **options):
    options = {
        'train_dataloader.dataset.ann_file': photos,
        'train_dataloader.dataset.min_image_side': 32,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': 1,
        **options,
    }
    cfg = load_tiny_config(tiny, work_dir, config, **options)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h['type'] != 'IPAdapterVisualizationHook'
    ]
    runner = Runner.from_cfg(cfg)
    record = Record()
    runner.register_hook(record)
    runner.train()
    return runner, record


@pytest.mark.slow  # two Runner trainings and a conversion (~40-70 s on 2 CPUs)
def test_stage1_square_then_stage2_buckets_from_its_adapter(tiny_families, tmp_path):
    tiny, photos = tiny_families['sdxl'], photo_folder(tmp_path / 'photos')
    _, first = run(
        STAGE1,
        tiny,
        tmp_path / 'stage1',
        photos,
        **{'train_dataloader.dataset.resolution': 64},
    )
    assert set(first.shapes) == {(64, 64)}
    assert first.lrs[0] < first.lrs[-1] <= 1e-4  # warming up
    result = run_tool_in_process('convert.py', tmp_path / 'stage1')
    assert result.returncode == 0, result.stderr

    stage2, second = run(
        STAGE2,
        tiny,
        tmp_path / 'stage2',
        photos,
        **{
            'model.pretrained_ip_adapter': str(
                tmp_path / 'stage1/ip_adapter.safetensors'
            ),
            'train_dataloader.dataset.resolution': 64,
            'train_dataloader.dataset.buckets': dict(step=16, max_aspect=2.0),
        },
    )
    assert len(set(second.shapes)) == 3  # tall, wide and square batches
    for shape, time_ids in zip(second.shapes, second.time_ids, strict=True):
        assert (time_ids[:, 4:] == torch.tensor(shape)).all()  # target size
    ema = next(h for h in stage2.hooks if type(h).__name__ == 'AdapterEMAHook')
    assert ema.ema_model.steps > 0
