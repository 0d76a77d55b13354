"""data.json records → samples; clear errors for bad annotation files."""

import json
import os.path as osp
import shutil

import pytest

from diffengine_ipa.datasets import IPAdapterDataset
from diffengine_ipa.errors import DatasetError

from ..conftest import REPO

MINI = osp.join(REPO, 'data/mini_dataset')


def make_dataset(tmp_path, records, name='data.json', **kwargs):
    ann = tmp_path / name
    ann.write_text(records if isinstance(records, str) else json.dumps(records))
    return IPAdapterDataset(ann_file=str(ann), **kwargs)


def test_mini_dataset():
    dataset = IPAdapterDataset(ann_file=osp.join(MINI, 'data.json'))
    assert len(dataset) == 5
    sample = dataset.get_data_info(0)
    assert osp.isfile(sample['img_path']) and sample['text']


def test_paths_relative_to_annotation_folder_or_data_root(tmp_path):
    (tmp_path / 'pics').mkdir()
    shutil.copy(osp.join(MINI, 'images/cat.jpg'), tmp_path / 'pics/cat.jpg')
    records = [{'image_file': 'pics/cat.jpg', 'text': 'a cat'}]
    dataset = make_dataset(tmp_path, records)
    assert dataset.get_data_info(0)['img_path'] == str(tmp_path / 'pics/cat.jpg')

    elsewhere = tmp_path / 'annotations'
    elsewhere.mkdir()
    (elsewhere / 'data.json').write_text(json.dumps(records))
    dataset = IPAdapterDataset(
        ann_file='annotations/data.json', data_root=str(tmp_path)
    )
    assert dataset.get_data_info(0)['img_path'] == str(tmp_path / 'pics/cat.jpg')


def test_json_lines(tmp_path):
    shutil.copy(osp.join(MINI, 'images/cat.jpg'), tmp_path / 'cat.jpg')
    lines = '\n'.join(
        json.dumps({'image_file': 'cat.jpg', 'text': t}) for t in ('a cat', 'the cat')
    )
    assert len(make_dataset(tmp_path, lines, name='data.jsonl')) == 2


@pytest.mark.parametrize(
    'records, message',
    [
        ('{"images": ["a.jpg"]}', 'expected a JSON list'),
        ('[{"image_file": "a.jpg"', 'not valid JSON or JSON Lines'),
        (
            [{'image': 'a.jpg', 'text': 'x'}],
            r'record 0 \(-\): needs "image_file" and "text" keys',
        ),
        (
            [{'image_file': 'missing.jpg', 'text': 'x'}],
            r'record 0 \(missing.jpg\): no such file',
        ),
        ([], 'no records'),
    ],
)
def test_bad_annotation_files(tmp_path, records, message):
    with pytest.raises(DatasetError, match=message) as err:
        make_dataset(tmp_path, records)
    assert str(tmp_path / 'data.json') in str(err.value)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(DatasetError, match='cannot read the annotation file'):
        IPAdapterDataset(ann_file=str(tmp_path / 'none.json'))
