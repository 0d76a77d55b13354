"""Evaluation case ids name output files: never a path out of the output
folder, and never shared by two cases."""

import json
import os
import os.path as osp

import pytest
import torch
from PIL import Image

from diffengine_ipa.datasets import IPAdapterEvalDataset
from diffengine_ipa.errors import DatasetError
from diffengine_ipa.evaluation.report import write_report

from .bad_inputs import good_jpeg

HOSTILE_IDS = ['../../evil', '/etc/cron.d/x', 'a/b', '.hidden', '..', 'ok']


def cases_file(root, ids, files=None) -> str:
    (root / 'images').mkdir(parents=True, exist_ok=True)
    cases = []
    for index, case_id in enumerate(ids):
        file = files[index] if files else f'images/{index}.jpg'
        os.makedirs(osp.dirname(root / file), exist_ok=True)
        good_jpeg(root / file)
        case = {
            'image_file': file,
            'text': f'image {index}',
            'prompt': f'prompt {index}',
        }
        if case_id is not None:
            case['id'] = case_id
        cases.append(case)
    (root / 'cases.json').write_text(json.dumps(cases))
    return str(root / 'cases.json')


def test_hostile_ids_write_inside_the_output_folder(tmp_path):
    dataset = IPAdapterEvalDataset(cases_file(tmp_path / 'data', HOSTILE_IDS))
    ids = [dataset.get_data_info(i)['case_id'] for i in range(len(dataset))]
    assert ids == ['evil', 'etc_cron.d_x', 'a_b', 'hidden', '_', 'ok']
    rows = [
        dict(dataset.get_data_info(i), clip_i=0.5, clip_t=0.2, embedding=torch.ones(4))
        for i in range(len(dataset))
    ]
    out = tmp_path / 'out'
    images = [Image.new('RGB', (8, 8))] * len(rows)
    write_report(rows, images, str(out))
    written = {
        osp.join(root, f)
        for root, _, files in os.walk(tmp_path)
        for f in files
        if f.endswith('.png')
    }
    assert written and all(p.startswith(str(out) + os.sep) for p in written)


@pytest.mark.parametrize(
    'ids, files',
    [
        (['same', 'same'], None),
        ([None, None], ['a/cat.jpg', 'b/cat.jpg']),  # ids from the file names
        (['a/b', 'a_b'], None),  # equal once made safe
    ],
)
def test_duplicate_ids_are_an_error(tmp_path, ids, files):
    with pytest.raises(DatasetError, match='have the same id') as err:
        IPAdapterEvalDataset(cases_file(tmp_path, ids, files))
    assert 'give each case its own "id"' in str(err.value)
