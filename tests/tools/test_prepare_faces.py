"""tools/prepare_faces.py: face embeddings and crops for the FaceID records."""

import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from diffengine_ipa.faces import build_face_embedder, draw_face

from .helpers import one_line_error, run_tool_here

TINY = ('--embedder', 'TinyFaceEmbedder')


def picture(path, *faces, size=128):
    image = Image.new('RGB', (size, size), (60, 120, 200))
    for center, radius in faces:
        draw_face(image, center, radius)
    image.save(path)
    return path


def test_faces_are_embedded_counted_named_and_reused(tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    picture(images / 'one.png', ((64, 64), 40))
    picture(images / 'moved.jpg', ((50, 70), 30))
    picture(images / 'none.png')
    picture(images / 'two.png', ((30, 30), 20), ((90, 90), 30))
    (images / 'broken.png').write_bytes(b'not a png')
    records = [
        dict(image_file='images/one.png', text='a', tag=7),
        dict(image_file='images/none.png', text='b'),
        dict(image_file='images/two.png', text='c'),
        dict(image_file='images/broken.png', text='d'),
        # the face comes from the reference when the record has one
        dict(image_file='images/none.png', reference_file='images/moved.jpg', text='e'),
        dict(image_file='images/one.png', reference_file=['images/one.png'], text='f'),
    ]
    data = tmp_path / 'data.jsonl'
    data.write_text(''.join(json.dumps(r) + '\n' for r in records))
    out = tmp_path / 'prepared' / 'faces.jsonl'

    first = run_tool_here('prepare_faces.py', data, '--out', out, *TINY).stdout
    assert (
        f'{data}: 6 records, 2 kept, 4 left out (no face found: 1, several '
        'faces: 1, not an image: 1, several references: 1); 0 images '
        'reused' in first
    )
    assert '  record 2 (images/none.png): no face found' in first
    assert (
        '  record 3 (images/two.png): several faces: 2 found, one is wanted '
        '(--largest keeps the largest)' in first
    )
    assert '  record 4 (images/broken.png): not an image' in first
    assert '  record 6 (images/one.png): several references (reference_' in first
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r['text'] for r in kept] == ['a', 'e']
    assert kept[0]['tag'] == 7 and kept[0]['image_file'] == '../images/one.png'
    assert kept[1]['reference_file'] == '../images/moved.jpg'
    embedder = build_face_embedder(dict(type='TinyFaceEmbedder'))
    embeddings = []
    for record in kept:
        embedding = np.load(out.parent / record['face_embedding'])
        assert embedding.shape == (512,) and embedding.dtype == np.float32
        assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
        crop = Image.open(out.parent / record['face_image'])
        assert crop.size == (224, 224) and crop.mode == 'RGB'
        embeddings.append(embedding)
    (face,) = embedder.faces(Image.open(images / 'one.png'))
    assert np.array_equal(embeddings[0], face.embedding)
    assert float(embeddings[0] @ embeddings[1]) > 0.97  # the same face drawn

    # A rerun reuses every unchanged image; a changed one is embedded again.
    written = osp.getmtime(out.parent / kept[0]['face_embedding'])
    again = run_tool_here('prepare_faces.py', data, '--out', out, *TINY).stdout
    assert '5 images reused' in again
    assert osp.getmtime(out.parent / kept[0]['face_embedding']) == written
    image = Image.open(images / 'one.png')
    draw_face(image, (64, 64), 40, skin=(190, 130, 95))  # another person
    image.save(images / 'one.png')
    third = run_tool_here('prepare_faces.py', data, '--out', out, *TINY).stdout
    assert '6 records, 2 kept' in third and '4 images reused' in third
    assert float(np.load(out.parent / kept[0]['face_embedding']) @ embeddings[0]) < 0.9

    # --largest keeps the two-face image, with its larger face.
    largest = run_tool_here(
        'prepare_faces.py', data, '--out', out, '--largest', *TINY
    ).stdout
    assert '6 records, 3 kept, 3 left out' in largest
    assert '4 images reused' in largest  # two.png had no outputs yet
    manifest = json.loads((tmp_path / 'prepared/faces_files/manifest.json').read_text())
    assert manifest['images'][str(images / 'two.png')]['bbox'] == [60, 60, 121, 121]


def test_a_folder_of_captioned_photos_and_errors(tmp_path):
    photos = tmp_path / 'photos'
    photos.mkdir()
    picture(photos / 'me.png', ((64, 64), 40))
    (photos / 'me.txt').write_text('a photo of me')
    picture(photos / 'nobody.png')
    (photos / 'nobody.txt').write_text('an empty room')
    picture(photos / 'uncaptioned.png', ((64, 64), 40))
    # the command of docs/faceid.md, on the tiny embedder
    result = run_tool_here('prepare_faces.py', photos, '--embedder', 'TinyFaceEmbedder')
    assert '3 records, 1 kept, 2 left out' in result.stdout
    assert (
        'record 3 (uncaptioned.png): no caption file uncaptioned.txt' in result.stdout
    )
    (record,) = [
        json.loads(line)
        for line in (tmp_path / 'photos_faces.jsonl').read_text().splitlines()
    ]
    assert record['image_file'] == 'photos/me.png' and record['text'] == 'a photo of me'
    assert record['face_image'].startswith('photos_faces_files/')

    none = tmp_path / 'none.json'
    none.write_text(json.dumps([dict(image_file='photos/nobody.png', text='x')]))
    error = one_line_error(run_tool_here('prepare_faces.py', none, *TINY, check=False))
    assert error == (
        f'error: {none}: no record has a usable face (1 skipped: no face found: 1)'
    )
    assert not (tmp_path / 'none_faces.jsonl').exists()
    error = one_line_error(
        run_tool_here('prepare_faces.py', none, '--out', none, *TINY, check=False)
    )
    assert 'is DATA itself' in error
    error = one_line_error(
        run_tool_here('prepare_faces.py', none, '--embedder', 'Nope', check=False)
    )
    assert "unknown type 'Nope'" in error
