"""Damaged caches are rebuilt or named, and a cache is never trusted when
its source changed, even by a file of the same size and modification time
(``cp -p``, ``rsync -t``, ``tar x``)."""

import json
import os
import subprocess

import numpy as np
import pytest

from diffengine_ipa.datasets import IPAdapterDataset, LoadImage
from diffengine_ipa.datasets.record_index import _inspect
from diffengine_ipa.errors import DatasetError

from .test_record_sources import CAPTIONS, write_images


def dataset(root, **kwargs):
    return IPAdapterDataset(
        ann_file=str(root / 'data.json'),
        pipeline=[LoadImage()],
        index_cache=str(root / 'cache'),
        min_image_side=8,
        check_workers=1,
        **kwargs,
    )


def index_folder(root):
    (folder,) = (root / 'cache' / 'dataset_index').glob('*[!k]')  # not .lock
    return folder


@pytest.fixture
def root(tmp_path):
    records = write_images(tmp_path)
    (tmp_path / 'img/1.png').write_bytes(b'')  # a bad record, skipped
    (tmp_path / 'data.json').write_text(json.dumps(records))
    return tmp_path


def texts(data):
    return [data[i]['text'] for i in range(len(data))]


EXPECTED = [CAPTIONS[0], *CAPTIONS[2:]]


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete(path):
    path.unlink()


def edit(path):
    """A valid file of the same kind, other values: all verdicts 'fine',
    all targets record 0, a caption changed."""
    if path.suffix == '.json':
        meta = json.loads(path.read_text())
        meta['checksums'] = 'lost'
        path.write_text(json.dumps(meta))
        return
    values = np.load(path)
    np.save(path, np.zeros_like(values) if values.dtype != np.uint8 else values[::-1])


@pytest.mark.parametrize('damage', [truncate, delete, edit])
@pytest.mark.parametrize(
    'name', ['meta.json', 'verdict.npy', 'target.npy', 'text.npy', 'files_ends.npy']
)
def test_a_damaged_record_index_is_rebuilt(root, name, damage):
    assert texts(dataset(root, on_bad_record='skip')) == EXPECTED
    path = index_folder(root) / name
    damage(path)
    problem = _inspect(str(index_folder(root)))[1]
    assert problem and name in problem, problem
    assert texts(dataset(root, on_bad_record='skip')) == EXPECTED  # rebuilt
    assert _inspect(str(index_folder(root)))[1] is None
    with pytest.raises(DatasetError, match=r'1\.png\): zero-byte file'):
        dataset(root)  # the bad record is known again


def test_an_index_that_cannot_be_removed_is_named(root):
    dataset(root, on_bad_record='skip')
    folder = index_folder(root)
    (folder / 'verdict.npy').write_bytes(b'')
    (folder / 'keep').mkdir()
    (folder / 'keep' / 'x').write_text('x')
    os.chmod(folder / 'keep', 0o500)
    immutable = os.access(folder / 'keep', os.W_OK)  # root: permissions ignored
    if (
        immutable
        and subprocess.run(
            ['chattr', '+i', str(folder / 'keep' / 'x')], capture_output=True
        ).returncode
    ):
        pytest.skip('no way to make a file undeletable for this user')
    try:
        with pytest.raises(DatasetError) as err:
            dataset(root, on_bad_record='skip')
    finally:
        if immutable:
            subprocess.run(['chattr', '-i', str(folder / 'keep' / 'x')], check=True)
        os.chmod(folder / 'keep', 0o700)
    message = str(err.value)
    assert f'the record index {folder} is damaged (verdict.npy has 0 bytes' in message
    assert message.endswith('; delete that folder') and '\n' not in message


def same_size_same_mtime(path, data):
    """Replace ``path`` by ``data`` (the same length) with ``cp -p`` from a
    file whose modification time is the original's."""
    stat = path.stat()
    assert len(data) == stat.st_size
    other = path.with_name('.replacement')
    other.write_bytes(data)
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    subprocess.run(['cp', '-p', str(other), str(path)], check=True)
    other.unlink()
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (
        stat.st_size,
        stat.st_mtime_ns,
    )


def test_an_image_replaced_with_the_same_size_and_mtime_is_checked_again(root):
    assert texts(dataset(root, on_bad_record='skip')) == EXPECTED
    image = root / 'img/2.png'
    same_size_same_mtime(
        image,
        b'garbage!' * (image.stat().st_size // 8) + b'!' * (image.stat().st_size % 8),
    )
    with pytest.raises(DatasetError, match=r'2\.png\): not an image'):
        dataset(root)


def test_an_image_unpacked_by_tar_with_its_mtime_is_checked_again(root):
    """tar keeps whole seconds: the images came from a tar already."""
    image = root / 'img/3.png'
    os.utime(image, (1_700_000_000, 1_700_000_000))
    assert texts(dataset(root, on_bad_record='skip')) == EXPECTED
    data = image.read_bytes()
    stat = image.stat()
    (root / 'new').mkdir()
    (root / 'new/3.png').write_bytes(b'\0' * len(data))
    os.utime(root / 'new/3.png', ns=(stat.st_atime_ns, stat.st_mtime_ns))
    subprocess.run(['tar', 'cf', 'x.tar', '-C', 'new', '3.png'], cwd=root, check=True)
    subprocess.run(
        ['tar', 'xf', str(root / 'x.tar'), '-C', str(root / 'img')], check=True
    )
    assert image.stat().st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(DatasetError, match=r'3\.png\): not an image'):
        dataset(root)


def test_an_annotation_file_replaced_with_the_same_size_and_mtime_is_read_again(root):
    assert texts(dataset(root, on_bad_record='skip')) == EXPECTED
    ann = root / 'data.json'
    text = ann.read_text()
    assert 'two cats' in text
    same_size_same_mtime(ann, text.replace('a red fox', 'a red cat').encode())
    assert texts(dataset(root, on_bad_record='skip'))[0] == 'a red cat'
