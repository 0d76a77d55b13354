"""Dataset validation: every bad input is reported (strict) or dropped
(skip); unusual but valid images are converted."""

import io
import json
import logging
import time

import numpy as np
import pytest
from mmengine.logging import MMLogger
from PIL import Image

from diffengine_ipa.datasets import IPAdapterDataset, LoadImage
from diffengine_ipa.datasets.record_check import printable
from diffengine_ipa.errors import DatasetError
from diffengine_ipa.image_io import read_rgb_image

from .bad_inputs import (
    CASES,
    good_jpeg,
    huge_header_png,
    write_case,
    write_records,
)
from .test_ip_adapter_dataset import MINI


@pytest.fixture
def mm_log():
    """What MMEngine's current logger writes during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


@pytest.mark.parametrize('mode', ['strict', 'skip'])
@pytest.mark.parametrize('name', list(CASES))
def test_bad_input_table(tmp_path, name, mode, mm_log):
    root = tmp_path / 'data'
    records = write_case(root, name)
    write_records(root / 'data.json', records)
    reason = CASES[name][3]

    def build():
        return IPAdapterDataset(ann_file=str(root / 'data.json'), on_bad_record=mode)

    if reason is None:  # usable: kept, and it loads as 8-bit RGB
        dataset = build()
        assert len(dataset) == 2
        assert read_rgb_image(dataset.get_data_info(1)['img_path']).mode == 'RGB'
    elif mode == 'strict':
        with pytest.raises(DatasetError) as err:
            build()
        message = str(err.value)
        assert message.startswith(f'{root / "data.json"}: 1 of 2 records')
        assert f'record 1 ({printable(records[1]["image_file"])}): ' in message
        assert reason in message and 'on_bad_record="skip"' in message
    else:
        dataset = build()
        log = mm_log.getvalue()
        assert len(dataset) == 1
        assert dataset.get_data_info(0)['text'] == 'a good caption'
        assert 'WARNING' in log and 'skipped 1 of 2 unusable records' in log
        assert f'record 1 ({printable(records[1]["image_file"])}): ' in log
        assert reason in log


def write_json(path, records, prefix=''):
    path.write_text(prefix + json.dumps(records), encoding='utf-8')


@pytest.mark.parametrize('mode', ['strict', 'skip'])
def test_file_level_problems(tmp_path, mode):
    good_jpeg(tmp_path / 'a.jpg')
    ann = tmp_path / 'data.json'
    write_json(ann, [{'image_file': 'a.jpg', 'text': 'x'}], prefix='\ufeff')
    assert len(IPAdapterDataset(ann_file=str(ann), on_bad_record=mode)) == 1
    write_json(ann, {'image_file': 'a.jpg', 'text': 'x'})  # one record
    assert len(IPAdapterDataset(ann_file=str(ann), on_bad_record=mode)) == 1
    write_json(ann, {'images': ['a.jpg']})
    with pytest.raises(DatasetError, match='expected a JSON list'):
        IPAdapterDataset(ann_file=str(ann), on_bad_record=mode)
    write_json(ann, [{'image_file': 'missing.jpg', 'text': 'x'}])
    with pytest.raises(DatasetError, match=r'\(none is usable\)'):
        IPAdapterDataset(ann_file=str(ann), on_bad_record=mode)


def test_unusual_images_are_converted(tmp_path):
    write_case(tmp_path, 'RGBA PNG')
    for name in ('RGBA PNG', '16-bit PNG', 'EXIF-rotated JPEG', 'CMYK JPEG'):
        write, file = CASES[name][:2]
        write(tmp_path / file)
    alpha = np.asarray(read_rgb_image(str(tmp_path / 'alpha.png')))
    assert (alpha[:, :48] == [255, 0, 0]).all()  # opaque red stays red
    assert (alpha[:, 48:] == 255).all()  # transparent → white, not black
    assert (np.asarray(read_rgb_image(str(tmp_path / 'deep.png'))) == 128).all()
    assert read_rgb_image(str(tmp_path / 'rotated.jpg')).size == (96, 128)
    red = np.asarray(read_rgb_image(str(tmp_path / 'cmyk.jpg'))).mean((0, 1))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_pixel_cap_replaces_pils_bomb_guard(tmp_path, monkeypatch):
    import diffengine_ipa.image_io as image_io

    good_jpeg(tmp_path / 'a.jpg')  # 96x96
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # PIL would refuse
    assert read_rgb_image(str(tmp_path / 'a.jpg')).size == (96, 96)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    monkeypatch.setattr(image_io, 'MAX_IMAGE_PIXELS', 96 * 96 - 1)
    with pytest.raises(DatasetError.__base__, match='too large'):
        read_rgb_image(str(tmp_path / 'a.jpg'))
    huge_header_png(tmp_path / 'huge.png')
    with pytest.raises(DatasetError.__base__, match='too large'):
        read_rgb_image(str(tmp_path / 'huge.png'))


def test_min_image_side_is_configurable(tmp_path):
    good_jpeg(tmp_path / 'a.jpg')  # 96x96
    write_json(tmp_path / 'data.json', [{'image_file': 'a.jpg', 'text': 'x'}])
    ann = str(tmp_path / 'data.json')
    assert len(IPAdapterDataset(ann_file=ann, min_image_side=96)) == 1
    with pytest.raises(DatasetError, match='min_image_side is 97'):
        IPAdapterDataset(ann_file=ann, min_image_side=97)


def test_skip_mode_replaces_a_record_that_breaks_mid_training(tmp_path):
    for name in ('a', 'b'):
        good_jpeg(tmp_path / f'{name}.jpg')
    write_json(
        tmp_path / 'data.json', [{'image_file': f'{n}.jpg', 'text': n} for n in 'ab']
    )
    pipeline = [dict(type=LoadImage)]
    for mode in ('strict', 'skip'):
        dataset = IPAdapterDataset(
            ann_file=str(tmp_path / 'data.json'), pipeline=pipeline, on_bad_record=mode
        )
        if mode == 'strict':
            (tmp_path / 'a.jpg').write_bytes(b'')  # broken after the check
            with pytest.raises(DatasetError, match='a.jpg: zero-byte file'):
                dataset[0]
        else:
            assert dataset[0]['img_path'] == str(tmp_path / 'b.jpg')


def test_validation_of_the_mini_dataset_is_fast():
    start = time.perf_counter()
    dataset = IPAdapterDataset(ann_file=f'{MINI}/data.json')
    elapsed = time.perf_counter() - start
    assert len(dataset) == 5 and elapsed < 1.0, elapsed
