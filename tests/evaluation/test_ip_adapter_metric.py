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
