"""The shapes_ leaves: the world's paths, resolution and schedule, the judge
as their evaluator, and a training step on each family (tiny family swapped
in, on a small written world)."""

import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope

from diffengine_ipa.registry import DATASETS, MODELS

from ..conftest import REPO, family_of, tiny_overrides

LEAVES = sorted(glob.glob(osp.join(REPO, 'configs/ip_adapter/shapes_*.py')))
# Each family pipeline's own default guidance (FLUX: diffusers' documented
# IP-Adapter call, true CFG 4 against an empty negative prompt).
GUIDANCE = dict(sd15=7.5, sdxl=5.0, sd3=7.0, flux=3.5)


def test_one_leaf_per_family():
    assert [osp.basename(p) for p in LEAVES] == [
        'shapes_flux.py',
        'shapes_sd15.py',
        'shapes_sd35.py',
        'shapes_sdxl.py',
    ]


@pytest.mark.parametrize('path', LEAVES, ids=osp.basename)
def test_leaf_sets_the_world_and_the_calibrated_schedule(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)[len('shapes_') : -3]
    assert cfg.model.pretrained_model_name_or_path == f'work_dirs/shapes_world/{name}'
    assert cfg.model.image_encoder.pretrained_model_name_or_path == (
        f'work_dirs/shapes_world/{name}/image_encoder'
    )
    data = cfg.train_dataloader
    assert data.dataset.ann_file == 'work_dirs/shapes_world/pairs/data.json'
    assert data.dataset.resolution == data.dataset.min_image_side == 32
    assert data.batch_size == 64 and cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.train_cfg.max_epochs * 3200 // 64 == 600  # steps on 3200 pairs
    generation = cfg.model.generation_cfg
    assert (generation.steps, generation.height, generation.width) == (20, 32, 32)
    assert generation.guidance_scale == GUIDANCE[family_of(path)]
    if family_of(path) == 'flux':
        assert generation.negative_prompt == '' and generation.true_cfg_scale == 4.0
    else:
        assert generation.negative_prompt is None
    test = cfg.test_dataloader.dataset
    assert test.scales == (0.0, 0.5, 1.0) and test.empty_prompt
    assert cfg.test_evaluator.type == 'ReferenceMatchMetric'


@pytest.mark.parametrize('path', LEAVES, ids=osp.basename)
def test_leaf_trains_a_step_on_the_world(path, tiny_families, small_world):
    from diffengine_ipa.user_config import prepare_config

    cfg = Config.fromfile(path)
    overrides = {
        k: v
        for k, v in tiny_overrides(tiny_families[family_of(path)]).items()
        if k.startswith('model.')
    }
    cfg.merge_from_dict(overrides)
    tiny = Config.fromfile(
        osp.join(
            REPO,
            'configs/ip_adapter',
            'tiny_'
            + dict(sd3='sd35').get(family_of(path), family_of(path))
            + '_mini_dataset.py',
        )
    )
    cfg.model.image_projection = tiny.model.image_projection
    prepare_config(cfg, path)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    cfg.train_dataloader.dataset.ann_file = osp.join(small_world, 'pairs/data.json')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 300
    batch = model.data_preprocessor(default_collate([dataset[0], dataset[1]]), True)
    assert batch['inputs']['pixel_values'].shape[-2:] == (32, 32)
    assert torch.isfinite(model(**batch)['loss'])
    test = dict(
        cfg.test_dataloader.dataset,
        ann_file=osp.join(small_world, 'heldout/cases.json'),
    )
    assert len(DATASETS.build(test)) == 54 * 3
