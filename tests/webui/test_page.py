"""The page's glue without a browser, and the command that serves it."""

import glob
import os.path as osp
import subprocess
import sys

import pytest

from ..conftest import REPO
from .conftest import CONFIG, IMAGES, put

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
    from diffengine_ipa.webui.kit import config_names
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
    offered = [choice[1] for choice in dropdowns[0].choices]
    assert offered == config_names() and CONFIG in offered
    shipped = sorted(
        osp.basename(p)
        for p in glob.glob(osp.join(REPO, 'configs', 'ip_adapter', '*.py'))
    )
    assert sorted(offered) == shipped  # every config, the tiny ones included
    page = Page(ws)
    with pytest.raises(gr.Error, match='outside the workspace'):
        shown(page.load_dataset)('../elsewhere')
    with pytest.raises(gr.Error, match='choose images'):
        shown(page.add_images)('datasets/d', [], 'caption')


def test_refresh_sends_only_what_changed(tmp_path):
    from diffengine_ipa.webui.page import Page
    from diffengine_ipa.webui.workspace import Workspace

    ws = Workspace(str(tmp_path / 'ws'))
    page = Page(ws)
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
