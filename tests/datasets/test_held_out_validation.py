"""Validation on the user's own records: a held-out split (``val_split``) or a
second set of records (``val_ann_file``), their captions as prompts."""

import glob
import json
import os.path as osp
import shutil

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from diffengine_ipa.datasets.held_out_split import held_out_split
from diffengine_ipa.errors import DatasetError, UserError
from diffengine_ipa.registry import DATASETS

from ..conftest import REPO, load_tiny_config

MINI = osp.join(REPO, 'data/mini_dataset/data.json')


def test_the_split_is_fixed_disjoint_and_whole():
    usable = np.arange(100) * 3
    val = held_out_split(usable, 0.1, 'val', 'data.json')
    train = held_out_split(usable, 0.1, 'train', 'data.json')
    assert (len(val), len(train)) == (10, 90)
    assert sorted(np.concatenate([val, train]).tolist()) == usable.tolist()
    assert np.array_equal(val, held_out_split(usable, 0.1, 'val', 'data.json'))
    assert len(held_out_split(usable[:5], 0.01, 'val', 'data.json')) == 1
    with pytest.raises(
        DatasetError,
        match=r'^data.json: val_split=0.5 of 1 '
        'records leaves none to train on$',
    ):
        held_out_split(usable[:1], 0.5, 'val', 'data.json')
    with pytest.raises(DatasetError, match='between 0 and 1'):
        held_out_split(usable, 1.5, 'val', 'data.json')
    with pytest.raises(DatasetError, match="split='test'"):
        held_out_split(usable, 0.1, 'test', 'data.json')


def image_files(dataset) -> set[str]:
    return {dataset.get_data_info(i)['img_path'] for i in range(len(dataset))}


def test_training_never_sees_the_held_out_records():
    init_default_scope('diffengine_ipa')
    common = dict(type='IPAdapterDataset', ann_file=MINI, val_split=0.4)
    train = DATASETS.build(dict(common, split='train'))
    val = DATASETS.build(dict(common, split='val'))
    assert (len(train), len(val)) == (3, 2)
    assert not image_files(train) & image_files(val)
    assert len(image_files(train) | image_files(val)) == 5


def test_val_split_trains_on_the_rest_and_validates_on_the_held_out(
    tiny_family, tmp_path
):
    work_dir = tmp_path / 'work_dir'
    cfg = load_tiny_config(
        tiny_family,
        work_dir,
        val_split=0.4,
        val_cases=1,
        **{'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1},
    )
    val = cfg.val_dataloader.dataset
    assert (val.type, val.split, val.val_split, val.caption_as_prompt) == (
        'IPAdapterEvalDataset',
        'val',
        0.4,
        True,
    )
    assert val.ann_file == cfg.train_dataloader.dataset.ann_file
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3  # 5 records, 2 held out
    held_out = runner.val_dataloader.dataset
    case = held_out.get_data_info(0)
    assert len(held_out) == 1 and case['prompt'] == case['text']
    assert case['text'] in {r['text'] for r in json.load(open(MINI))}
    assert not image_files(held_out) & image_files(runner.train_dataloader.dataset)
    (scalars,) = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    with open(scalars) as f:
        assert any('ipa/combined' in json.loads(line) for line in f)


def test_val_ann_file_reads_a_caption_folder(tiny_family, tmp_path):
    folder = tmp_path / 'held_out'
    folder.mkdir()
    for name, caption in (('cat', 'a cat on a sofa'), ('coffee', 'a cup')):
        shutil.copy(
            osp.join(REPO, f'data/mini_dataset/images/{name}.jpg'),
            folder / f'{name}.jpg',
        )
        (folder / f'{name}.txt').write_text(caption)
    cfg = load_tiny_config(tiny_family, tmp_path / 'w', val_ann_file=str(folder))
    assert 'val_split' not in cfg.train_dataloader.dataset
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    prompts = sorted(dataset.get_data_info(i)['prompt'] for i in range(len(dataset)))
    assert prompts == ['a cat on a sofa', 'a cup']


def test_val_split_and_val_ann_file_together_is_one_line(tiny_family, tmp_path):
    with pytest.raises(UserError, match='give val_split or val_ann_file, not both$'):
        load_tiny_config(tiny_family, tmp_path, val_split=0.1, val_ann_file=MINI)
