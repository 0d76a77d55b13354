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
# One per family here; FaceID's leaf (face records) in test_faceid_shapes.py.
FAMILY_LEAVES = [p for p in LEAVES if '_faceid' not in p]
# Each family pipeline's own default guidance (FLUX: diffusers' documented
# IP-Adapter call, true CFG 4 against an empty negative prompt).
GUIDANCE = dict(
    sd15=7.5,
    sdxl=5.0,
    sd3=7.0,
    flux=3.5,
    chroma=5.0,
    flux_kontext=3.5,
    qwen_image=None,  # no guidance embedding: true CFG only
)
# FLUX.1 Kontext trains on the edit records and is judged on the edit cases.
PAIRS = dict(flux_kontext='pairs/edits.json')
CASES = dict(flux_kontext='heldout/edit_cases.json')


def test_one_leaf_per_family():
    assert [osp.basename(p) for p in LEAVES] == [
        'shapes_chroma.py',
        'shapes_flux.py',
        'shapes_flux_kontext.py',
        'shapes_qwen_image.py',
        'shapes_sd15.py',
        'shapes_sd15_faceid.py',
        'shapes_sd35.py',
        'shapes_sdxl.py',
    ]


@pytest.mark.parametrize('path', FAMILY_LEAVES, ids=osp.basename)
def test_leaf_sets_the_world_and_the_calibrated_schedule(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)[len('shapes_') : -3]
    assert cfg.model.pretrained_model_name_or_path == f'work_dirs/shapes_world/{name}'
    assert cfg.model.image_encoder.pretrained_model_name_or_path == (
        f'work_dirs/shapes_world/{name}/image_encoder'
    )
    family = family_of(path)
    data = cfg.train_dataloader
    pairs = PAIRS.get(family, 'pairs/data.json')
    assert data.dataset.ann_file == f'work_dirs/shapes_world/{pairs}'
    assert data.dataset.resolution == data.dataset.min_image_side == 32
    assert data.batch_size == 64 and cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.train_cfg.max_epochs * 3200 // 64 == 600  # steps on 3200 pairs
    generation = cfg.model.generation_cfg
    assert (generation.steps, generation.height, generation.width) == (20, 32, 32)
    assert generation.guidance_scale == GUIDANCE[family]
    if family in ('flux', 'flux_kontext', 'qwen_image'):
        assert generation.negative_prompt == '' and generation.true_cfg_scale == 4.0
    elif family == 'chroma':  # real CFG against an empty negative prompt
        assert generation.negative_prompt == '' and 'true_cfg_scale' not in generation
    else:
        assert generation.negative_prompt is None
    test = cfg.test_dataloader.dataset
    assert test.scales == (0.0, 0.5, 1.0) and test.empty_prompt
    assert not test.get('quick', False)
    cases = CASES.get(family, 'heldout/cases.json')
    assert test.ann_file == cfg.val_dataloader.dataset.ann_file
    assert test.ann_file == f'work_dirs/shapes_world/{cases}'
    assert cfg.test_evaluator.type == 'ReferenceMatchMetric'


@pytest.mark.parametrize('path', FAMILY_LEAVES, ids=osp.basename)
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
    family = family_of(path)
    pairs = PAIRS.get(family, 'pairs/data.json')
    cfg.train_dataloader.dataset.ann_file = osp.join(small_world, pairs)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 300
    batch = model.data_preprocessor(default_collate([dataset[0], dataset[1]]), True)
    assert batch['inputs']['pixel_values'].shape[-2:] == (32, 32)
    assert torch.isfinite(model(**batch)['loss'])
    test = dict(
        cfg.test_dataloader.dataset,
        ann_file=osp.join(small_world, CASES.get(family, 'heldout/cases.json')),
    )
    cases = DATASETS.build(test)
    assert len(cases) == 54 * 3
    if family == 'flux_kontext':  # the image to edit reaches the model
        assert cases[0]['inputs']['input_img'].size == (32, 32)


def test_an_edit_case_generates_from_its_input_image(tiny_families, small_world):
    """The judge of shapes_flux_kontext: predict hands each case's image to
    edit (``input_img``) to the generation call, whose pixels it gives; an
    edit case without it generates another image."""
    import json

    import numpy as np
    from PIL import Image

    from diffengine_ipa.models.generation import live_pipeline

    from ..conftest import build_tiny_model

    model = build_tiny_model(tiny_families, 'flux_kontext')
    model.generation_cfg.update(steps=2)
    cfg = model.generation_cfg
    case = json.load(open(osp.join(small_world, 'heldout/edit_cases.json')))[0]

    def image(name: str) -> Image.Image:
        return Image.open(osp.join(small_world, 'heldout', case[name])).convert('RGB')

    reference, given = image('image_file'), image('input_file')
    inputs = dict(img=[reference], prompt=[''], scale=[1.0], seed=[0])
    (edit,) = model.predict(dict(inputs, input_img=[given]))
    (plain,) = model.predict(inputs)
    with live_pipeline(model) as pipe:
        (direct,) = pipe(
            reference,
            '',
            cfg['negative_prompt'],
            1.0,
            cfg['steps'],
            cfg['guidance_scale'],
            0,
            1,
            cfg['height'],
            cfg['width'],
            input_image=given,
        )
    assert np.array_equal(np.asarray(edit['image']), np.asarray(direct))
    assert not np.array_equal(np.asarray(edit['image']), np.asarray(plain['image']))
