"""The Data tab: uploads and captions written as the kit's annotation file,
with the record check's verdict per image."""

import json
import os.path as osp

import pytest
from PIL import Image

from diffengine_ipa.datasets import read_records
from diffengine_ipa.webui import data, views
from diffengine_ipa.webui.workspace import Workspace

from ..tools.helpers import run_tool
from .conftest import IMAGES, put


@pytest.fixture
def ws(tmp_path):
    return Workspace(str(tmp_path / 'ws'))


def test_uploads_with_a_caption_become_records(ws):
    uploads = [
        put(ws, osp.join(IMAGES, name), f'.gradio/up/{name}')
        for name in ('cat.jpg', 'rocket.jpg')
    ]
    rows = data.add_images(ws, 'datasets/mine', uploads, 'a photo')
    assert rows == [
        ['images/cat.jpg', 'a photo', 'ok'],
        ['images/rocket.jpg', 'a photo', 'ok'],
    ]
    records = read_records(osp.join(ws.root, 'datasets/mine/data.json'))
    assert records == [
        {'image_file': 'images/cat.jpg', 'text': 'a photo'},
        {'image_file': 'images/rocket.jpg', 'text': 'a photo'},
    ]
    # The same name again is kept apart, not overwritten.
    rows = data.add_images(ws, 'datasets/mine', uploads[:1], 'again')
    assert rows[-1] == ['images/cat_1.jpg', 'again', 'ok']
    assert views.dataset_summary(ws, 'datasets/mine', rows).startswith(
        '3 images, **3 usable**'
    )
    assert [c for _, c in views.dataset_gallery(ws, 'datasets/mine', rows)] == [
        'a photo',
        'a photo',
        'again',
    ]


def test_txt_captions_uploaded_beside_the_images(ws):
    image = put(ws, osp.join(IMAGES, 'coffee.jpg'), '.gradio/a/coffee.jpg')
    caption = osp.join(ws.root, '.gradio/b/coffee.txt')
    with open(put(ws, image, '.gradio/b/coffee.txt'), 'w') as f:
        f.write('an espresso\non a red saucer\n')
    rows = data.add_images(ws, 'datasets/mine', [image, caption])
    assert rows == [['images/coffee.jpg', 'an espresso on a red saucer', 'ok']]


def test_each_image_gets_the_checks_verdict(ws):
    folder = osp.join(ws.root, 'datasets/mixed')
    put(ws, osp.join(IMAGES, 'cat.jpg'), 'datasets/mixed/cat.jpg')
    Image.new('RGB', (32, 32)).save(osp.join(folder, 'tiny.png'))
    with open(osp.join(folder, 'broken.jpg'), 'wb') as f:
        f.write(b'not an image')
    for stem in ('cat', 'tiny', 'broken'):
        with open(osp.join(folder, f'{stem}.txt'), 'w') as f:
            f.write(f'a {stem} thing')
    Image.new('RGB', (80, 80)).save(osp.join(folder, 'uncaptioned.png'))
    rows = data.scan_folder(ws, 'datasets/mixed')
    verdicts = {row[0]: (row[1], row[2]) for row in rows}
    assert verdicts == {
        'broken.jpg': ('a broken thing', 'not an image (PIL cannot identify it)'),
        'cat.jpg': ('a cat thing', 'ok'),
        'tiny.png': ('a tiny thing', 'too small (32x32 px; min_image_side is 64)'),
        'uncaptioned.png': ('', 'caption ("text") is empty'),
    }
    # Scanning again adds nothing; editing a caption and saving keeps it.
    assert data.scan_folder(ws, 'datasets/mixed') == rows
    rows = [
        [f, 'now captioned' if f == 'uncaptioned.png' else t, v] for f, t, v in rows
    ]
    rows = data.save_rows(ws, 'datasets/mixed', rows + [['', 'dropped', '']])
    assert len(rows) == 4 and rows[-1] == ['uncaptioned.png', 'now captioned', 'ok']
    summary = views.dataset_summary(ws, 'datasets/mixed', rows)
    assert '2 usable' in summary and 'fix or remove' in summary


def test_the_file_is_what_check_dataset_reads(ws):
    uploads = [put(ws, osp.join(IMAGES, 'cat.jpg'), '.gradio/cat.jpg')]
    data.add_images(ws, 'datasets/mine', uploads, 'a cat')
    path = osp.join(ws.root, 'datasets/mine/data.json')
    assert json.load(open(path)) == [{'image_file': 'images/cat.jpg', 'text': 'a cat'}]
    assert 'all 1 records usable' in run_tool('check_dataset.py', path).stdout


def test_a_captioned_gif_is_read_by_every_reader(ws):
    """One list of image extensions: the caption-folder reader the datasets
    use, the web UI's folder scan and uploads, and the record check all take
    a captioned .gif (read as its first frame)."""
    from diffengine_ipa.cli import IMAGE_EXTENSIONS
    from diffengine_ipa.datasets.record_sources import FolderRecords

    assert data.IMAGE_EXTENSIONS is IMAGE_EXTENSIONS
    folder = osp.join(ws.root, 'datasets/gifs')
    for name, mode in (('still.png', 'RGB'), ('moving.gif', 'P')):
        Image.new(mode, (80, 72), 3).save(osp.join(ws.folder('datasets/gifs'), name))
        stem = osp.splitext(name)[0]
        with open(osp.join(folder, f'{stem}.txt'), 'w') as f:
            f.write(f'a {stem}\nimage\n')
    found = sorted(record['image_file'] for record, _ in FolderRecords(folder))
    assert found == ['moving.gif', 'still.png']
    rows = data.scan_folder(ws, 'datasets/gifs')
    assert rows == [
        ['moving.gif', 'a moving image', 'ok'],
        ['still.png', 'a still image', 'ok'],
    ]
    upload = put(ws, osp.join(folder, 'moving.gif'), '.gradio/up/moving.gif')
    rows = data.add_images(ws, 'datasets/uploaded', [upload], 'a gif')
    assert rows == [['images/moving.gif', 'a gif', 'ok']]
