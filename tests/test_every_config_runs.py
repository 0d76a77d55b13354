"""Every shipped config trains, validates and tests: 2 iterations on the
tiny family swapped in, then the validation it schedules and a one-case test,
through the tools' own config loading and hardware settings (so the *_fast
configs' bf16 frozen weights and the DiT configs' bf16 + checkpointing run
exactly as written, only smaller)."""

import glob
import os.path as osp

import pytest
from mmengine.config import Config

from .conftest import REPO, family_of, tiny_overrides

LEAVES = sorted(glob.glob(osp.join(REPO, 'configs/ip_adapter/*.py')))
# Strategies need a distributed launch (and DeepSpeed needs CUDA); FSDP's
# full state-dict gather crashes in PyTorch on CPU (README, Multi-GPU). Their
# models and datasets are those of the configs they derive from, run here.
NEEDS_LAUNCHER = ('_fsdp.py', '_deepspeed.py')
# The tiny leaves are the real recipes with the tiny family: their training,
# evaluation and conversion run in tests/tools (train_tiny, test_evaluate).
# The shapes_ leaves train on the shapes world's own bases and records:
# tests/shapes_world runs them.
# The FaceID leaves read face records (data/mini_faces) and have no
# reference-image validation: tests/test_configs.py builds them and
# tests/models/test_faceid.py trains, converts and loads them in diffusers.
RUN = [
    p
    for p in LEAVES
    if not osp.basename(p).startswith(('tiny_', 'shapes_')) and '_faceid' not in p
]


def tiny_counterpart(path: str) -> str:
    """The tiny leaf of the same family and projection
    (``sdxl_mini_dataset_plus.py`` → ``tiny_sdxl_mini_dataset_plus.py``,
    ``sdxl_photos_stage1_512.py`` → ``tiny_sdxl_mini_dataset.py``)."""
    family = dict(sd3='sd35').get(family_of(path), family_of(path))
    plus = '_plus' if '_plus' in osp.basename(path) else ''
    return osp.join(REPO, 'configs/ip_adapter', f'tiny_{family}_mini_dataset{plus}.py')


def small_config(path: str, family: dict, work_dir) -> Config:
    """``path`` as tools/train.py loads it, on the tiny family at 64 px:
    2 training images (2 iterations), then validation; one test case at
    two scales and two seeds."""
    from diffengine_ipa.engine import hardware
    from diffengine_ipa.user_config import load_user_config

    options = dict(
        tiny_overrides(family),
        **{
            'train_dataloader.dataset.ann_file': osp.join(  # the config's own
                REPO, Config.fromfile(path).train_dataloader.dataset.ann_file
            ),
            'train_dataloader.dataset.resolution': 64,
            'train_dataloader.dataset.indices': 2,
            'train_dataloader.batch_size': 1,
            'train_dataloader.num_workers': 0,
            'train_dataloader.persistent_workers': False,
            'train_cfg.max_epochs': 1,
            'train_cfg.val_interval': 1,
            'val_dataloader.dataset.indices': 1,
            'test_dataloader.dataset.indices': 1,
            'test_dataloader.dataset.scales': (0.0, 1.0),  # 4 images, not 16
            'test_dataloader.dataset.seeds': (0, 1),
            'model.generation_cfg': dict(steps=1, height=64, width=64),
            'default_hooks.logger.interval': 1,
            'default_hooks.checkpoint.interval': 2,
            'custom_hooks.3.interval': 1,  # IPAdapterVisualizationHook's samples
            'custom_hooks.3.num_cases': 1,
        },
    )
    if family_of(path) in ('sd3', 'flux', 'flux_kontext'):
        options['model.family.max_sequence_length'] = 32
    cfg = load_user_config(path, options)
    # The tiny recipe's projection (a Resampler of one 64-wide head, not
    # 1280): the published depth and token count at a tiny cost.
    tiny = tiny_counterpart(path)
    cfg.model.image_projection = Config.fromfile(tiny).model.image_projection
    cfg.work_dir = str(work_dir)
    hardware.configure(cfg, None)
    return cfg


@pytest.mark.slow  # ~10 s a config on 2 cores
@pytest.mark.parametrize('path', RUN, ids=osp.basename)
def test_config_trains_validates_and_tests(path, tiny_families, tmp_path):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from diffengine_ipa.apis import build_embedding_cache
    from diffengine_ipa.official_format import official_state_dict
    from diffengine_ipa.registry import MODELS

    if osp.basename(path).endswith(NEEDS_LAUNCHER):
        pytest.skip(
            'a strategy config: needs torchrun (DeepSpeed: CUDA); '
            'FSDP checkpoints crash in PyTorch on CPU'
        )
    family = tiny_families[family_of(path)]
    cfg = small_config(path, family, tmp_path / 'work_dir')
    if cfg.model.get('pretrained_ip_adapter'):  # the *_finetune configs
        from safetensors.torch import save_file

        init_default_scope('diffengine_ipa')
        published = MODELS.build(dict(cfg.model, pretrained_ip_adapter=None))
        cfg.model.pretrained_ip_adapter = str(tmp_path / 'published.safetensors')
        save_file(official_state_dict(published), cfg.model.pretrained_ip_adapter)
    dataset = cfg.train_dataloader.dataset
    if dataset.get('embedding_cache'):  # the *_fast configs
        dataset.embedding_cache = str(tmp_path / 'cache')
        indices = dataset.pop('indices')  # the cache covers every record
        build_embedding_cache(cfg, dataset.embedding_cache)
        dataset.indices = indices
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert osp.isfile(osp.join(cfg.work_dir, 'iter_2.pth'))
    assert glob.glob(osp.join(cfg.work_dir, '*/vis_data/vis_image/*.png'))
    scores = runner.test()
    assert 'ipa/combined' in scores, scores


def test_every_leaf_is_run_or_skipped_for_a_reason():
    assert {osp.basename(p) for p in LEAVES if p not in RUN} == {
        osp.basename(p)
        for p in LEAVES
        if osp.basename(p).startswith(('tiny_', 'shapes_')) or '_faceid' in p
    }
    Config.fromfile(LEAVES[0])  # the glob found configs
