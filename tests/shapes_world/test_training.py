"""The documented commands, run as a user runs them (in a fresh folder): the
world and its bases, a short SD1.5 shapes training, conversion, the judge,
the contact sheet. The adapter must follow its reference's colour."""

import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from diffengine_ipa.shapes_world import chance_levels

from ..conftest import REPO

# Trains 100 steps at batch 32 and judges 18 references: ~90 s alone on 2 cores
# (docs/shapes_world.md has the full config's run).
pytestmark = pytest.mark.slow
# One held-out case of each (hue, shape): 18 balanced references.
ONE_PER_KIND = list(range(0, 54, 3))


def run(cwd, tool: str, *args: str) -> str:
    """``python tools/<tool> ARGS`` from ``cwd`` on this checkout."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
        HF_HUB_OFFLINE='1',
    )
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', tool), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_a_short_sd15_training_follows_the_reference_colour(tmp_path):
    config = osp.join(REPO, 'configs/ip_adapter/shapes_sd15.py')
    out = run(tmp_path, 'shapes_world.py')
    assert 'base: work_dirs/shapes_world/sd15' in out
    assert 'reused' in run(tmp_path, 'shapes_world.py', '--no-bases')
    # 1 epoch of the 100 x 32 pairs: 100 steps, a twelfth of the config's samples;
    # measured 1.00 at scale 1 and 0.17 at 0 on these 18 references
    run(
        tmp_path,
        'train.py',
        config,
        '--cfg-options',
        'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1',
        'train_dataloader.batch_size=32',
    )
    run(tmp_path, 'convert.py', 'work_dirs/shapes_sd15')
    adapter = 'work_dirs/shapes_sd15/ip_adapter.safetensors'
    run(
        tmp_path,
        'test.py',
        config,
        adapter,
        '--out-dir',
        'eval',
        '--cfg-options',
        f'test_dataloader.dataset.indices={ONE_PER_KIND}',
        'test_dataloader.dataset.scales=[0.0,1.0]',
        'model.generation_cfg.steps=8',  # the config's 20: the same 1.00 and 0.17
    )
    report = json.load(open(tmp_path / 'eval' / 'eval_report.json'))
    colour = {s: v['colour_match'] for s, v in report['per_scale'].items()}
    assert report['per_scale']['1']['images'] == 18
    chance = chance_levels()['colour']
    # the full config (600 x 64): 1.00 at scale 1, 0.17 at 0 on all 54 references
    assert colour['1'] >= 2 * chance, colour  # well above chance (1/6)
    assert colour['1'] >= colour['0'] + 0.2, colour
    assert osp.isfile(osp.join(tmp_path, report['figure']))
    assert osp.isfile(osp.join(tmp_path, report['html']))
    out = run(tmp_path, 'shapes_world.py', '--contact-sheet')
    # SD1.5 with the adapter just trained, FLUX.1 with the shipped one
    for family in ('sd15', 'flux'):
        sheet = f'outputs/shapes_world/contact_sheet_{family}.png'
        assert sheet in out and osp.isfile(tmp_path / sheet), out
