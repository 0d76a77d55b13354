"""ReferenceMatchMetric: exact rates on images whose answer is known, and the
report it writes (table, figure, HTML, grid)."""

import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from diffengine_ipa.evaluation import ReferenceMatchMetric
from diffengine_ipa.evaluation.reference_match_metric import match_table
from diffengine_ipa.shapes_world import world


def _samples(tmp_path, scale: float, make_output) -> list[dict]:
    rng = np.random.default_rng(0)
    samples = []
    for i, (hue, shape) in enumerate((h, s) for h in world.HUES for s in world.SHAPES):
        scene = world.sample_scene(rng, hue, shape)
        reference = world.render(scene)
        path = str(tmp_path / f'ref_{i}.png')
        reference.save(path)
        samples.append(
            dict(
                case_id=f'case{i}',
                img_path=path,
                scale=scale,
                seed=0,
                reference=reference,
                image=make_output(rng, scene),
            )
        )
    return samples


def _other_hue(hue: str) -> str:
    names = list(world.HUES)
    return names[(names.index(hue) + 1) % len(names)]


def test_rates_per_scale_and_the_report(tmp_path):
    metric = ReferenceMatchMetric(
        out_dir=str(tmp_path / 'eval'),
        report_meta=dict(checkpoint='adapter.safetensors'),
    )
    # scale 1: the same colour and shape elsewhere; scale 0: another colour,
    # the same shape; scale 0.5: an empty background (no shape found)
    metric.process(
        {},
        _samples(
            tmp_path, 1.0, lambda rng, s: world.render(world.reference_scene(rng, s))
        ),
    )
    metric.process(
        {},
        _samples(
            tmp_path,
            0.0,
            lambda rng, s: world.render(
                world.sample_scene(rng, _other_hue(s.hue), s.shape)
            ),
        ),
    )
    metric.process(
        {},
        _samples(
            tmp_path, 0.5, lambda rng, s: Image.new('RGB', (32, 32), (90, 90, 90))
        ),
    )
    scores = metric.compute_metrics(metric.results)
    assert scores == {
        'colour_match@0': 0.0,
        'shape_match@0': 1.0,
        'colour_match@0.5': 0.0,
        'shape_match@0.5': 0.0,
        'colour_match@1': 1.0,
        'shape_match@1': 1.0,
    }
    report = json.load(open(tmp_path / 'eval' / 'eval_report.json'))
    assert report['chance'] == pytest.approx(dict(colour=1 / 6, shape=1 / 3))
    assert report['per_scale']['1']['images'] == 18
    assert report['checkpoint'] == 'adapter.safetensors'
    assert osp.getsize(report['figure']) > 1000
    assert Image.open(report['grids'][0]).size == (64 * 4, 20 + 64 * 18)
    page = open(report['html']).read()
    assert 'reference_match.png' in page and '<td>1</td><td>1.00</td>' in page
    table = match_table(report)
    assert table.splitlines()[-1].split() == ['chance', '0.17', '0.33']
