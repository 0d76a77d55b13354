"""IPAdapterMetric with a real (tiny) CLIP judge."""

import json
import os.path as osp

import pytest
import torch
from PIL import Image

from diffengine_ipa.evaluation import IPAdapterMetric, get_judge
from diffengine_ipa.evaluation.report import summarize

from ..conftest import REPO

IMAGES = osp.join(REPO, 'data/mini_dataset/images')


def test_identical_images_give_clip_i_one(tiny_family):
    judge = get_judge(tiny_family['judge'])
    cat = Image.open(osp.join(IMAGES, 'cat.jpg')).convert('RGB')
    rocket = Image.open(osp.join(IMAGES, 'rocket.jpg')).convert('RGB')
    embeds = judge.image_embeds([cat, cat, rocket])
    assert embeds.norm(dim=-1).allclose(torch.ones(3))
    assert float(embeds[0] @ embeds[1]) == pytest.approx(1.0, abs=1e-6)
    assert float(embeds[0] @ embeds[2]) < 0.999


def sample(case_id, scale, seed, image_name, prompt='a cat'):
    reference = Image.open(osp.join(IMAGES, 'cat.jpg')).convert('RGB')
    image = Image.open(osp.join(IMAGES, image_name)).convert('RGB')
    return dict(
        case_id=case_id,
        img_path=osp.join(IMAGES, 'cat.jpg'),
        prompt=prompt,
        scale=scale,
        seed=seed,
        reference=reference,
        image=image,
    )


def test_metric_equals_the_formula(tiny_family, tmp_path):
    metric = IPAdapterMetric(
        clip_model=tiny_family['judge'],
        out_dir=str(tmp_path),
        report_meta=dict(mode='x'),
    )
    batch = [
        sample('cat', 1.0, 0, 'cat.jpg'),
        sample('cat', 1.0, 1, 'coffee.jpg'),
        sample('cat', 0.0, 0, 'rocket.jpg'),
    ]
    metric.process(None, batch)
    results = metric.evaluate(len(batch))
    judge = get_judge(tiny_family['judge'])
    images = judge.image_embeds([s['image'] for s in batch])
    reference = judge.image_embeds([batch[0]['reference']])[0]
    text = judge.text_embeds(['a cat'])[0]
    clip_i = (images @ reference).tolist()
    clip_t = (images @ text).tolist()
    assert clip_i[0] == pytest.approx(1.0, abs=1e-6)  # the reference itself
    assert results['ipa/clip_i'] == pytest.approx(sum(clip_i) / 3, abs=1e-6)
    assert results['ipa/clip_t'] == pytest.approx(sum(clip_t) / 3, abs=1e-6)
    assert results['ipa/clip_i@1'] == pytest.approx(sum(clip_i[:2]) / 2, abs=1e-6)
    # Diversity only within one case and scale: the two seeds at scale 1.
    assert results['ipa/diversity'] == pytest.approx(
        1 - float(images[0] @ images[1]), abs=1e-6
    )
    assert 'ipa/diversity@0' not in results

    report = json.loads((tmp_path / 'eval_report.json').read_text())
    assert (
        report['mode'] == 'x' and 'CLIPScore' in report['how_percentages_are_derived']
    )
    scale_one = report['cases'][0]['scales']['1']
    assert scale_one['reference_preservation_percent'] == pytest.approx(
        100 * max(0, (clip_i[0] + clip_i[1]) / 2), abs=1e-4
    )
    assert all(osp.isfile(p) for p in scale_one['images'])
    assert osp.isfile(tmp_path / 'grid_seed0.png')
    assert Image.open(tmp_path / 'grid_seed0.png').size == (3 * 256, 28 + 256)


def test_summary_without_images():
    row = dict(
        case_id='a',
        img_path='x',
        prompt='p',
        scale=1.0,
        seed=0,
        clip_i=0.9,
        clip_t=0.3,
        embedding=torch.ones(4),
    )
    report = summarize([row])
    assert report['overall']['grade'] == 'A'  # (90 + 75) / 2 = 82.5
    assert report['overall']['diversity'] is None
    # No face embedder: the report is as before, without face fields.
    assert not [key for key in report['overall'] if key.startswith('face')]
    assert 'how_face_similarity_is_derived' not in report


def test_face_similarity_beside_clip_scores(tiny_family, tmp_path):
    from diffengine_ipa.evaluation.report import format_table
    from diffengine_ipa.faces import build_face_embedder, draw_face

    def face(*faces, skin=(224, 172, 140)):
        image = Image.new('RGB', (128, 128), (60, 120, 200))
        for center, radius in faces:
            draw_face(image, center, radius, skin=skin)
        return image

    reference = face(((64, 64), 40))
    reference.save(tmp_path / 'me.png')
    outputs = [
        face(((50, 70), 30)),  # the same face: ~1
        face(),  # no face: a miss, 0
        face(((64, 64), 40), skin=(190, 130, 95)),  # another face
    ]
    batch = [
        dict(
            case_id='me',
            img_path=str(tmp_path / 'me.png'),
            prompt='a portrait',
            scale=1.0,
            seed=seed,
            reference=reference,
            image=image,
        )
        for seed, image in enumerate(outputs)
    ]
    metric = IPAdapterMetric(
        clip_model=tiny_family['judge'],
        out_dir=str(tmp_path / 'eval'),
        face_embedder=dict(type='TinyFaceEmbedder'),
    )
    metric.process(None, batch)
    results = metric.evaluate(len(batch))
    embedder = build_face_embedder(dict(type='TinyFaceEmbedder'))
    (ref,) = embedder.faces(reference)
    same = float(ref.embedding @ embedder.faces(outputs[0])[0].embedding)
    other = float(ref.embedding @ embedder.faces(outputs[2])[0].embedding)
    assert same > 0.97 and other < 0.9
    assert results['ipa/face_similarity'] == pytest.approx((same + 0 + other) / 3)
    assert results['ipa/face_misses'] == 1
    assert results['ipa/face_misses@1'] == 1 and 'ipa/clip_i' in results
    report = json.loads((tmp_path / 'eval' / 'eval_report.json').read_text())
    assert report['face_embedder'] == dict(type='TinyFaceEmbedder')
    assert 'miss' in report['how_face_similarity_is_derived']
    assert report['overall']['face_scored'] == 3
    assert report['cases'][0]['scales']['1']['face_misses'] == 1
    table = format_table(report)
    assert 'face' in table.splitlines()[0]
    assert table.splitlines()[-1].split()[-2:] == [f'{(same + other) / 3:.3f}', '1']
    # Comparing adapters shows the face columns too.
    from diffengine_ipa.evaluation import format_comparison

    compared = format_comparison(dict(overall=dict(a=report['overall'])))
    assert compared.splitlines()[0].split()[-2:] == ['face', 'misses']
    assert compared.splitlines()[1].split()[-2:] == [f'{(same + other) / 3:.3f}', '1']
