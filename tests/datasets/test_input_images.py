"""FLUX.1 Kontext records: the input image (``input_file``) beside the target
and the reference, transformed as its target, and one line when missing."""

import json
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from diffengine_ipa.errors import DatasetError
from diffengine_ipa.registry import DATASETS

from ..conftest import REPO


def kontext_dataset(ann_file, flip=False):
    from mmengine.config import Config

    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/mini_dataset_edits.py')
    )
    pipeline = [t for t in cfg.train_pipeline if t['type'] != 'PreprocessReference']
    pipeline[-1] = dict(  # no image encoder here
        type='PackInputs', input_keys=('pixel_values', 'input_pixel_values')
    )
    if flip:
        pipeline.insert(3, dict(type='RandomHorizontalFlip', prob=1.0))
    init_default_scope('diffengine_ipa')
    return DATASETS.build(
        dict(
            type='IPAdapterDataset',
            ann_file=str(ann_file),
            resolution=32,
            pipeline=pipeline,
            on_bad_record='strict',
            min_image_side=1,
        )
    )


def test_the_input_image_is_resized_cropped_and_flipped_as_its_target(tmp_path):
    # A 64×48 target, an input image of another size (to be sized as it) with
    # a white left half: after the short-edge resize to 32, the centre crop
    # and the flip, the input's white half is on the right.
    Image.new('RGB', (64, 48), (200, 30, 30)).save(tmp_path / 'target.png')
    given = np.zeros((96, 128, 3), np.uint8)
    given[:, :64] = 255
    Image.fromarray(given).save(tmp_path / 'input.png')
    (tmp_path / 'data.json').write_text(
        json.dumps([dict(image_file='target.png', input_file='input.png', text='x')])
    )
    sample = kontext_dataset(tmp_path / 'data.json', flip=True)[0]['inputs']
    pixels, edit = sample['pixel_values'], sample['input_pixel_values']
    assert pixels.shape == edit.shape == (3, 32, 32)
    assert edit[:, :, :14].max() < -0.99 and edit[:, :, 18:].min() > 0.99
    assert abs(float(pixels[0].mean()) - (200 / 127.5 - 1)) < 1e-5


def test_the_shipped_pairs_and_a_record_without_input_image(tmp_path):
    dataset = kontext_dataset(osp.join(REPO, 'data/mini_dataset/edit_pairs.json'))
    assert len(dataset) == 5
    info = dataset.get_data_info(0)
    assert osp.basename(info['input_path']) == 'cat.jpg'
    assert info['img_path'].endswith('edits/cat.jpg')
    assert osp.basename(info['reference_paths'][0]) == 'astronaut.jpg'
    sample = dataset[0]['inputs']
    assert (
        float((sample['input_pixel_values'] - sample['pixel_values']).abs().mean())
        > 0.1
    )

    Image.new('RGB', (64, 64)).save(tmp_path / 'a.png')
    records = [
        dict(image_file='a.png', input_file='a.png', text='one'),
        dict(image_file='a.png', text='two'),
        dict(image_file='a.png', input_file='gone.png', text='three'),
        dict(image_file='a.png', input_file=7, text='four'),
    ]
    (tmp_path / 'data.json').write_text(json.dumps(records))
    with pytest.raises(DatasetError) as err:
        kontext_dataset(tmp_path / 'data.json').full_init()
    assert 'input_file gone.png: no such file' in str(err.value)
    assert '"input_file" must be a path, got 7' in str(err.value)
    (tmp_path / 'data.json').write_text(json.dumps(records[:2]))
    with pytest.raises(DatasetError) as err:
        kontext_dataset(tmp_path / 'data.json').full_init()
    message = str(err.value)
    assert '\n' not in message and str(tmp_path / 'data.json') in message
    assert 'record 1 (a.png) has no "input_file"' in message
