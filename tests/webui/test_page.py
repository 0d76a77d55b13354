"""The page's glue without a browser, and the command that serves it."""

import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from ..conftest import REPO
from .conftest import IMAGES, put

gr = pytest.importorskip(
    'gradio', reason='the webui extra is not installed (bash tools/install_webui.sh)'
)


def test_help_answers_without_heavy_imports():
    result = subprocess.run(
        [
            sys.executable,
            '-X',
            'importtime',
            osp.join(REPO, 'tools/webui.py'),
            '--help',
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0 and '--workspace' in result.stdout
    assert 'localhost' in result.stdout  # binds to it by default
    imported = {
        line.split('|')[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith('import time:')
    }
    assert not imported & {'torch', 'gradio', 'diffengine_ipa', 'mmengine'}


def test_the_page_builds_and_shows_errors_as_one_line(tmp_path):
    from diffengine_ipa.models.families import FAMILIES
    from diffengine_ipa.webui.family_choices import (
        config_family,
        family_of,
        scale_presets,
    )
    from diffengine_ipa.webui.page import Page, build_page, shown
    from diffengine_ipa.webui.workspace import Workspace

    ws = Workspace(str(tmp_path / 'ws'))
    demo = build_page(ws)
    dropdowns = [
        b
        for b in demo.blocks.values()
        if isinstance(b, gr.Dropdown) and b.label == 'Config'
    ]
    assert len(dropdowns) == 3  # Train, Generate, Evaluate
    assert all(d.choices == dropdowns[0].choices for d in dropdowns)
    labels, offered = zip(*dropdowns[0].choices, strict=True)
    shipped = sorted(
        osp.basename(p)
        for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
        if '_base_' not in p
    )
    assert sorted(offered) == shipped  # every config, the tiny ones included
    # Grouped by the registry's families, in its order, each family's tiny
    # config first: every registered family is offered, under its label.
    first = next(iter(FAMILIES.values()))
    assert dropdowns[0].value == first.tiny_config == offered[0]
    order = list(FAMILIES)
    ranks = [order.index(config_family(name).name) for name in offered]
    assert ranks == sorted(ranks) and set(ranks) == set(range(len(FAMILIES)))
    for family in FAMILIES.values():
        assert f'{family.label} · {family.tiny_config}' in labels
        assert f'{family.label} · {family.config}' in labels
        ours = [name for name in offered if config_family(name) is family]
        assert ours[:2] == [family.tiny_config, family.config]
    # A variant's class (not in the registry) counts as the family it extends.
    sd15 = FAMILIES['sd15']
    variant = type('FaceIDLikeSD15', (sd15.base,), {})
    assert family_of(variant) is sd15 and family_of(object) is None
    # Presets: the default family's (SD1.5: none), every family's in the
    # label; the SDXL configs offer InstantStyle's.
    (preset,) = [b for b in demo.blocks.values() if b.elem_id == 'gen-preset']
    assert [c[1] for c in preset.choices] == ['scale']
    assert 'SDXL' in preset.label and 'SD1.5' not in preset.label
    assert scale_presets('sdxl_mini_dataset.py') == [
        'scale',
        'style',
        'layout',
        'style_and_layout',
    ]
    page = Page(ws)
    with pytest.raises(gr.Error, match='outside the workspace'):
        shown(page.load_dataset)('../elsewhere')
    with pytest.raises(gr.Error, match='choose images'):
        shown(page.add_images)('datasets/d', [], 'caption')


def test_refresh_sends_only_what_changed(tmp_path):
    from diffengine_ipa.webui.page import Page
    from diffengine_ipa.webui.workspace import Workspace
    from diffengine_ipa.work_dir import work_dir_lock

    ws = Workspace(str(tmp_path / 'ws'))
    page = Page(ws)
    assert page.run_choices() == gr.update(choices=[], value='my_adapter')
    with work_dir_lock(ws.run_dir('going')):  # a training the last server left
        os.utime(ws.folder('runs', 'newer'), (2e9, 2e9))
        assert page.run_choices() == gr.update(
            choices=['newer', 'going'], value='going'
        )
        assert page.refresh('going', None)[0] == '**runs/going: running**'
    assert page.run_choices()['value'] == 'newer'  # none running: the newest
    assert page.run_list('new_one') == gr.update(
        choices=['newer', 'going'], value='new_one'
    )
    values = page.refresh('r', None)
    assert values[0] == '**runs/r: not started**' and 'no iterations' in values[1]
    again = page.refresh('r', values[-1])
    assert all(value == gr.skip() for value in again[:-1])  # no update
    upload = put(ws, osp.join(IMAGES, 'cat.jpg'), '.gradio/cat.jpg')
    rows, summary, gallery, cleared, caption = page.add_images(
        'datasets/d', [upload], 'a cat'
    )
    assert rows == [['images/cat.jpg', 'a cat', 'ok']] and '1 usable' in summary
    assert gallery == [(osp.join(ws.root, 'datasets/d/images/cat.jpg'), 'a cat')]
    assert cleared is None and caption == ''
