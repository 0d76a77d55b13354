"""A workspace with the tiny SD1.5 family written by the page's own button,
shared by the web UI's tests; images and adapters copied into it."""

import os
import os.path as osp
import shutil

import pytest

from ..conftest import REPO

CONFIG = 'tiny_sd15_mini_dataset.py'
IMAGES = osp.join(REPO, 'data', 'mini_dataset', 'images')


@pytest.fixture(scope='session')
def tiny_workspace(tmp_path_factory):
    """A workspace whose ``models/tiny_models`` holds what the tiny SD1.5
    config loads (written as the page's 'Write tiny models' does)."""
    from diffengine_ipa.webui.base_models import write_tiny_models
    from diffengine_ipa.webui.workspace import Workspace

    ws = Workspace(str(tmp_path_factory.mktemp('webui_workspace')))
    assert sorted(write_tiny_models(ws, CONFIG)) == [
        'models/tiny_models/tiny_clip',
        'models/tiny_models/tiny_sd15',
    ]
    return ws


def put(ws, source: str, target: str) -> str:
    """Copy ``source`` to ``target`` inside the workspace; the copy's path."""
    path = osp.join(ws.root, target)
    os.makedirs(osp.dirname(path), exist_ok=True)
    shutil.copyfile(source, path)
    return path
