"""Annotation files as users' editors write them, and the validator and the
training path agreeing on every record."""

import json

import numpy as np
import pytest

from diffengine_ipa.datasets import IPAdapterDataset, read_records
from diffengine_ipa.errors import DatasetError
from diffengine_ipa.image_io import read_rgb_image

from ..tools.helpers import one_line_error, run_tool_in_process
from .bad_inputs import CASES, float_tiff, good_jpeg, write_case, write_records

RECORDS = [
    {'image_file': 'a.jpg', 'text': 'un chat en été, 猫'},
    {'image_file': 'b.jpg', 'text': 'a dog'},
]


@pytest.mark.parametrize(
    'encoding', ['utf-8', 'utf-8-sig', 'utf-16', 'utf-16-le', 'utf-16-be', 'utf-32']
)
def test_any_encoding_an_editor_writes(tmp_path, encoding):
    """UTF-16 ``'utf-16'`` has a BOM (Notepad's "Unicode"); -le/-be none."""
    path = tmp_path / 'data.json'
    path.write_bytes(json.dumps(RECORDS, ensure_ascii=False).encode(encoding))
    assert read_records(str(path)) == RECORDS


def test_undecodable_bytes_are_one_line(tmp_path):
    path = tmp_path / 'data.json'
    text = json.dumps(RECORDS, ensure_ascii=False, indent=1)
    path.write_bytes(text.encode('cp1252', errors='replace'))  # "ANSI"
    with pytest.raises(DatasetError) as err:
        read_records(str(path))
    assert str(err.value) == (
        f'{path}: not UTF-8 text (byte 0xe9 at line 4 '
        'cannot be decoded); save it as UTF-8'
    )


@pytest.mark.parametrize(
    'text, where',
    [
        (
            '[{"image_file": "a.jpg", "text": "x"},\n'
            ' {"image_file": "b.jpg", "text": "a", "text": "b"}]',
            'record 2',
        ),
        (
            '{"image_file": "a.jpg", "text": "x"}\n'
            '{"image_file": "a.jpg", "image_file": "b.jpg", "text": "x"}\n',
            'line 2',
        ),
        ('{"image_file": "a.jpg", "text": "x", "text": "y"}', 'line 1'),
    ],
)
def test_a_key_given_twice_is_named(tmp_path, text, where):
    path = tmp_path / 'data.json'
    path.write_text(text)
    with pytest.raises(DatasetError) as err:
        read_records(str(path))
    key = 'image_file' if where == 'line 2' else 'text'
    assert str(err.value) == (
        f'{path}: {where}: "{key}" is given twice; keep the one you mean'
    )


def test_json_lines_of_one_record(tmp_path):
    path = tmp_path / 'data.jsonl'
    path.write_text(json.dumps(RECORDS[0]) + '\n', encoding='utf-8')
    assert read_records(str(path)) == RECORDS[:1]


@pytest.mark.parametrize(
    'text', ['[' * 100_000 + ']' * 100_000, '{"a": ' * 50_000 + '1' + '}' * 50_000]
)
def test_absurdly_deep_json_is_one_line(tmp_path, text):
    path = tmp_path / 'data.json'
    path.write_text(text)
    with pytest.raises(DatasetError, match='nested too deeply') as err:
        read_records(str(path))
    assert '\n' not in str(err.value)


def test_data_root_slash(tmp_path):
    """Paths relative to ``/``: none 'escapes' the root."""
    good_jpeg(tmp_path / 'a.jpg')
    path = tmp_path / 'data.json'
    path.write_text(
        json.dumps([{'image_file': str(tmp_path / 'a.jpg')[1:], 'text': 'x'}])
    )
    dataset = IPAdapterDataset(ann_file=str(path), data_root='/')
    assert dataset.get_data_info(0)['img_path'] == str(tmp_path / 'a.jpg')


def test_float_and_32_bit_images_are_not_black(tmp_path):
    for name in ('float TIFF', '32-bit TIFF'):
        write, file = CASES[name][:2]
        write(tmp_path / file)
        gray = np.asarray(read_rgb_image(str(tmp_path / file)))[..., 0]
        assert gray[:, 0].max() == 0 and gray[:, -1].min() == 255, name
        assert abs(gray.mean() - 127.5) < 2, name
    float_tiff(tmp_path / 'f255.tif', np.full((96, 96), 200, np.float32))
    assert (np.asarray(read_rgb_image(str(tmp_path / 'f255.tif'))) == 200).all()


@pytest.mark.parametrize('name', list(CASES))
def test_validator_and_training_agree(tmp_path, name):
    """``tools/check_dataset.py`` exits 0 exactly when the dataset trains on
    every record (a surrogate caption used to pass the one and kill the
    other), and with the same reason otherwise."""
    root = tmp_path / 'data'
    write_records(root / 'data.json', write_case(root, name))
    result = run_tool_in_process('check_dataset.py', root / 'data.json')
    try:
        IPAdapterDataset(ann_file=str(root / 'data.json'))
    except DatasetError as err:
        assert CASES[name][3] in one_line_error(result) + result.stderr
        assert CASES[name][3] in str(err)
    else:
        assert CASES[name][3] is None and result.returncode == 0, result.stderr
