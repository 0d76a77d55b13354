"""The world as the issue defines it, its records, and the judge that reads
it back."""

import colorsys
import hashlib
import json
import math
import os.path as osp

import numpy as np
import pytest
from PIL import Image, ImageFilter

from diffengine_ipa.shapes_world import world
from diffengine_ipa.shapes_world.writer import write_world


def _hsv(rgb) -> tuple[float, float, float]:
    return colorsys.rgb_to_hsv(*(c / 255 for c in rgb))


def test_the_world_is_as_defined():
    degrees = sorted(world.HUES.values())
    gaps = [
        b - a for a, b in zip(degrees, degrees[1:] + [degrees[0] + 360], strict=True)
    ]
    assert len(degrees) >= 6 and min(gaps) >= 45 and len(world.SHAPES) >= 3
    rng = np.random.default_rng(1)
    lightness = []
    for _ in range(200):
        scene = world.sample_scene(rng)
        image = np.asarray(world.render(scene))
        corner = _hsv(image[0, 0]) if scene.center[0] > 0.5 else _hsv(image[-1, -1])
        centre = _hsv(image[round(scene.center[1] * 31), round(scene.center[0] * 31)])
        assert corner[1] <= 0.15 and centre[1] >= 0.7 and centre[2] >= 0.7
        lightness.append(scene.background[2])
    assert max(lightness) - min(lightness) > 0.6  # the background varies


def test_the_judge_reads_the_held_out_images(small_world):
    cases = json.load(open(osp.join(small_world, 'heldout/cases.json')))
    assert len(cases) >= 48
    right = [
        world.classify(Image.open(osp.join(small_world, 'heldout', case['image_file'])))
        == (case['hue'], case['shape'])
        for case in cases
    ]
    assert np.mean(right) >= 0.98


@pytest.mark.parametrize('damage', ['none', 'blur', 'blur_and_noise', 'half_size'])
def test_the_judge_survives_what_generation_does(damage):
    """Blur, noise and a lost half of the resolution, as a tiny VAE and
    20 steps leave a 32 px image."""
    rng = np.random.default_rng(2)
    right = []
    for _ in range(300):
        scene = world.sample_scene(rng)
        image = world.render(scene)
        if damage in ('blur', 'blur_and_noise'):
            image = image.filter(ImageFilter.GaussianBlur(0.8))
        if damage == 'blur_and_noise':
            noisy = np.asarray(image, float) + rng.normal(0, 12, (32, 32, 3))
            image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        if damage == 'half_size':
            image = image.resize((16, 16), Image.BILINEAR).resize((32, 32))
        right.append(world.classify(image) == (scene.hue, scene.shape))
    assert np.mean(right) >= 0.98


def test_the_judge_finds_no_shape_on_a_plain_background():
    assert world.classify(Image.new('RGB', (32, 32), (120, 118, 125))) == (None, None)


def test_a_reference_differs_from_its_target_in_place_size_and_background():
    rng = np.random.default_rng(3)
    for _ in range(300):
        target = world.sample_scene(rng)
        reference = world.reference_scene(rng, target)
        assert (reference.hue, reference.shape) == (target.hue, target.shape)
        assert math.dist(reference.center, target.center) >= 0.12
        assert abs(reference.extent - target.extent) >= 0.08
        assert abs(reference.background[2] - target.background[2]) >= 0.15


def test_records_pair_colour_and_shape_and_name_the_shape_only(small_world):
    records = json.load(open(osp.join(small_world, 'pairs/data.json')))
    assert len(records) == 300
    for record in records[:60]:
        target = Image.open(osp.join(small_world, 'pairs', record['image_file']))
        reference = Image.open(osp.join(small_world, 'pairs', record['reference_file']))
        assert (
            world.classify(target)
            == world.classify(reference)
            == (record['hue'], record['shape'])
        )
        assert np.abs(np.asarray(target, int) - np.asarray(reference, int)).mean() > 5
        assert record['text'] == f'a {record["shape"]}'  # no colour word
    pretrain = json.load(open(osp.join(small_world, 'pretrain/data.json')))
    assert pretrain[0]['text'] == f'a {pretrain[0]["hue"]} {pretrain[0]["shape"]}'


def _digests(folder: str) -> dict[str, str]:
    import glob

    return {
        osp.relpath(p, folder): hashlib.sha256(open(p, 'rb').read()).hexdigest()
        for p in sorted(glob.glob(osp.join(folder, '**/*.*'), recursive=True))
    }


def test_the_world_is_deterministic_by_seed_and_reused(tmp_path, small_world):
    spec = write_world(str(tmp_path / 'a'), seed=0, pretrain=200, pairs=300)
    assert not spec['reused']
    assert _digests(str(tmp_path / 'a')) == _digests(small_world)
    assert write_world(str(tmp_path / 'a'), seed=0, pretrain=200, pairs=300)['reused']
    write_world(str(tmp_path / 'b'), seed=1, pretrain=200, pairs=300)
    assert _digests(str(tmp_path / 'b')) != _digests(small_world)


def test_no_held_out_reference_is_a_training_image(small_world):
    digests = _digests(small_world)
    held_out = {
        d
        for name, d in digests.items()
        if name.startswith('heldout/images') and not name.endswith('_in.png')
    }
    trained = {
        d
        for name, d in digests.items()
        if name.startswith(('pairs/images', 'pretrain/images'))
    }
    assert len(held_out) == 54 and not held_out & trained
    cases = json.load(open(osp.join(small_world, 'heldout/cases.json')))
    kinds = {(c['hue'], c['shape']) for c in cases}
    assert len(kinds) == 18  # balanced: chance is one over the kinds
    quick = [c for c in cases if c['quick']]
    assert {c['hue'] for c in quick} == set(world.HUES) and all(
        c['prompt'] == '' for c in cases
    )


def test_edit_records_give_the_target_in_grey_and_cases_a_grey_layout(small_world):
    """FLUX.1 Kontext's records: the input image is the target's scene in
    grey (no colour for the judge to find, its layout kept); a held-out case's
    is a grey scene of the reference's shape elsewhere."""
    records = json.load(open(osp.join(small_world, 'pairs/data.json')))
    edits = json.load(open(osp.join(small_world, 'pairs/edits.json')))
    assert [{k: v for k, v in e.items() if k != 'input_file'} for e in edits] == (
        records
    )
    for edit in edits[:40]:
        target = Image.open(osp.join(small_world, 'pairs', edit['image_file']))
        given = Image.open(osp.join(small_world, 'pairs', edit['input_file']))
        assert world.classify(given) == (None, None)
        grey = np.asarray(given, int)
        assert (grey.max(2) - grey.min(2)).max() <= 0.15 * 255  # no colour
        # the layout: where the target is saturated, the input differs from
        # its own background
        rgb = np.asarray(target, float) / 255
        mask = rgb.max(2) - rgb.min(2) >= 0.3
        inside, outside = grey[mask].mean(), grey[~mask].mean()
        assert abs(inside - outside) > 0.3 * 255
    cases = json.load(open(osp.join(small_world, 'heldout/cases.json')))
    edit_cases = json.load(open(osp.join(small_world, 'heldout/edit_cases.json')))
    assert [{k: v for k, v in c.items() if k != 'input_file'} for c in edit_cases] == (
        cases
    )
    for case in edit_cases[:18]:
        given = Image.open(osp.join(small_world, 'heldout', case['input_file']))
        assert world.classify(given) == (None, None)


def test_an_uncoloured_scene_keeps_its_layout_against_any_background():
    rng = np.random.default_rng(3)
    for _ in range(100):
        scene = world.sample_scene(rng)
        grey = world.uncoloured(scene)
        assert (grey.center, grey.extent, grey.shape) == (
            scene.center,
            scene.extent,
            scene.shape,
        )
        assert abs(grey.value - scene.background[2]) >= 0.4
        assert world.classify(world.render(grey)) == (None, None)
