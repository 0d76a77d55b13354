"""Every format gives the same samples as the equivalent JSON list."""

import json

import numpy as np
import pytest

from diffengine_ipa.datasets import IPAdapterDataset, LoadImage
from diffengine_ipa.errors import DatasetError

from .bad_inputs import noise

CAPTIONS = ['a red fox', 'two cats', 'a boat at dusk', 'snow on pines']


def write_images(root):
    (root / 'img').mkdir(parents=True)
    records = []
    for i, text in enumerate(CAPTIONS):
        noise((64 + 8 * i, 72)).rotate(30 * i).save(root / f'img/{i}.png')
        (root / f'img/{i}.txt').write_text(text + '\n')
        records.append({'image_file': f'img/{i}.png', 'text': text})
    return records


def samples(ann_file, **kwargs):
    dataset = IPAdapterDataset(ann_file=str(ann_file), pipeline=[LoadImage()], **kwargs)
    return [
        (dataset[i]['text'], np.asarray(dataset[i]['img'])) for i in range(len(dataset))
    ]


def assert_same(got, expected):
    assert [text for text, _ in got] == [text for text, _ in expected]
    for (_, a), (_, b) in zip(got, expected, strict=True):
        assert np.array_equal(a, b)


@pytest.fixture
def folder(tmp_path):
    records = write_images(tmp_path)
    (tmp_path / 'data.json').write_text(json.dumps(records))
    return tmp_path, records


def test_json_lines_and_caption_folder(folder):
    root, records = folder
    expected = samples(root / 'data.json')
    (root / 'data.jsonl').write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    assert_same(samples(root / 'data.jsonl'), expected)
    assert_same(samples(root / 'img'), expected)


def test_caption_folder_names_an_image_without_caption(folder):
    root, _ = folder
    (root / 'img/1.txt').unlink()
    with pytest.raises(DatasetError, match=r'1\.png\): no caption file 1\.txt'):
        samples(root / 'img')
    assert len(samples(root / 'img', on_bad_record='skip')) == 3


def test_hugging_face_dataset_on_disk_and_parquet(folder):
    datasets = pytest.importorskip('datasets')
    root, records = folder
    expected = samples(root / 'data.json')
    table = datasets.Dataset.from_dict(
        {
            'photo': [str(root / r['image_file']) for r in records],
            'caption': [r['text'] for r in records],
        }
    ).cast_column('photo', datasets.Image())  # embeds the bytes on save
    table.save_to_disk(str(root / 'hf'))
    table.to_parquet(str(root / 'data.parquet'))
    columns = dict(image_column='photo', text_column='caption')
    assert_same(samples(root / 'hf', **columns), expected)
    assert_same(samples(root / 'data.parquet', **columns), expected)
    with pytest.raises(DatasetError, match="no column 'image'.*image_column"):
        samples(root / 'hf')


def test_hugging_face_paths_and_references(folder):
    datasets = pytest.importorskip('datasets')
    root, records = folder
    paired = [
        dict(r, reference_file=records[-1 - i]['image_file'])
        for i, r in enumerate(records)
    ]
    (root / 'paired.json').write_text(json.dumps(paired))
    datasets.Dataset.from_dict(
        {
            'image': [r['image_file'] for r in paired],
            'text': [r['text'] for r in paired],
            'ref': [r['reference_file'] for r in paired],
        }
    ).to_parquet(str(root / 'paired.parquet'))
    pipeline = [LoadImage()]
    a = IPAdapterDataset(ann_file=str(root / 'paired.json'), pipeline=pipeline)
    b = IPAdapterDataset(
        ann_file=str(root / 'paired.parquet'), reference_column='ref', pipeline=pipeline
    )
    for i in range(len(CAPTIONS)):
        assert np.array_equal(
            np.asarray(a[i]['reference_img']), np.asarray(b[i]['reference_img'])
        )


def test_the_index_is_reused_and_changed_images_rechecked(folder):
    root, _ = folder
    samples(root / 'data.json')
    (root / 'img/2.png').write_bytes(b'')  # broken after the first check
    with pytest.raises(DatasetError, match=r'2\.png\): zero-byte file'):
        samples(root / 'data.json')


def test_embedded_images_and_an_embedding_cache_are_one_line(folder):
    datasets = pytest.importorskip('datasets')
    root, records = folder
    images = [
        {'bytes': (root / r['image_file']).read_bytes(), 'path': None} for r in records
    ]
    datasets.Dataset.from_dict(
        {'image': images, 'text': [r['text'] for r in records]},
        features=datasets.Features(
            image=datasets.Image(), text=datasets.Value('string')
        ),
    ).to_parquet(str(root / 'x.parquet'))
    expected = samples(root / 'data.json')
    assert_same(samples(root / 'x.parquet'), expected)  # bytes inside
    with pytest.raises(DatasetError, match='stores its images inside it'):
        samples(root / 'x.parquet', embedding_cache=str(root / 'cache'))


def test_indices_keep_a_subset_as_base_dataset_does(folder):
    root, _ = folder
    texts = [text for text, _ in samples(root / 'data.json')]
    assert [t for t, _ in samples(root / 'data.json', indices=2)] == texts[:2]
    assert [t for t, _ in samples(root / 'data.json', indices=[3, 1])] == [
        texts[3],
        texts[1],
    ]


@pytest.mark.parametrize(
    'damage, reason',
    [
        (lambda b: b'garbage' * 20, 'not an image'),
        (lambda b: b'', 'empty image bytes (0 bytes)'),
        (lambda b: b[: len(b) // 2], 'truncated or corrupt image'),
    ],
)
def test_damaged_image_bytes_in_parquet_are_named(folder, damage, reason):
    datasets = pytest.importorskip('datasets')
    root, records = folder
    images = [
        {'bytes': (root / r['image_file']).read_bytes(), 'path': None} for r in records
    ]
    images[2]['bytes'] = damage(images[2]['bytes'])
    datasets.Dataset.from_dict(
        {'image': images, 'text': [r['text'] for r in records]},
        features=datasets.Features(
            image=datasets.Image(), text=datasets.Value('string')
        ),
    ).to_parquet(str(root / 'x.parquet'))
    with pytest.raises(DatasetError) as err:
        samples(root / 'x.parquet')
    assert f'{root / "x.parquet"}: 1 of 4 records are unusable' in str(err.value)
    assert f'record 2 (row 2): {reason}' in str(err.value)
    skipped = samples(root / 'x.parquet', on_bad_record='skip')
    assert [text for text, _ in skipped] == CAPTIONS[:2] + CAPTIONS[3:]


@pytest.mark.parametrize('name', ['state.json', 'dataset_info.json'])
@pytest.mark.parametrize('damage', [b'{"_data_files": [', b''])
def test_a_corrupt_hugging_face_folder_is_one_line(folder, name, damage):
    datasets = pytest.importorskip('datasets')
    root, records = folder
    datasets.Dataset.from_dict(
        {
            'image': [r['image_file'] for r in records],
            'text': [r['text'] for r in records],
        }
    ).save_to_disk(str(root / 'hf'))
    (root / 'hf' / name).write_bytes(damage)
    with pytest.raises(DatasetError) as err:
        samples(root / 'hf')
    message = str(err.value)
    assert message.startswith(f'{root / "hf"}: ') and name in message, message
    assert '\n' not in message
