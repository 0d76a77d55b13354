"""Every path the page reads or writes stays inside the workspace."""

import os
import os.path as osp

import pytest

from diffengine_ipa.webui import data, evaluation, files
from diffengine_ipa.webui.generation import InferencerCache, generate
from diffengine_ipa.webui.train_options import TrainSettings, train_command
from diffengine_ipa.webui.workspace import Workspace, WorkspaceError, check_name

from .conftest import CONFIG, IMAGES

OUTSIDE = ['../outside', '../../etc/passwd', '/etc/passwd', 'a/../../b', '/tmp']


@pytest.fixture
def ws(tmp_path):
    return Workspace(str(tmp_path / 'ws'))


def test_resolve_keeps_paths_inside(ws):
    assert ws.resolve('datasets/a') == osp.join(ws.root, 'datasets', 'a')
    assert ws.resolve(osp.join(ws.root, 'x.png')) == osp.join(ws.root, 'x.png')
    assert ws.resolve('a/../b') == osp.join(ws.root, 'b')
    for path in OUTSIDE:
        with pytest.raises(WorkspaceError, match='outside the workspace'):
            ws.resolve(path)
    with pytest.raises(WorkspaceError, match='no path'):
        ws.resolve('  ')
    with pytest.raises(WorkspaceError, match='no such file'):
        ws.resolve('missing.png', must_exist=True)


def test_a_symlink_out_of_the_workspace_is_refused(ws, tmp_path):
    secret = tmp_path / 'secret.txt'
    secret.write_text('not yours')
    os.symlink(secret, osp.join(ws.root, 'link.txt'))
    os.symlink(tmp_path, osp.join(ws.root, 'linked_dir'))
    for path in ('link.txt', 'linked_dir/secret.txt'):
        with pytest.raises(WorkspaceError, match='outside the workspace'):
            ws.resolve(path)


def test_names_are_plain(ws):
    assert check_name('my_adapter-2.0') == 'my_adapter-2.0'
    for name in ('', '..', '../x', 'a/b', '.hidden', 'a b'):
        with pytest.raises(WorkspaceError):
            check_name(name)
    with pytest.raises(WorkspaceError):
        ws.run_dir('../escape')


@pytest.mark.parametrize('path', OUTSIDE)
def test_callbacks_refuse_paths_outside(ws, path):
    """Each tab's callback, given a path out of the workspace."""
    cat = osp.join(IMAGES, 'cat.jpg')  # a real file, outside the workspace
    for name in ('a.pth', 'x.png'):  # files inside, so only `path` is wrong
        open(osp.join(ws.root, name), 'wb').close()
    calls = [
        lambda: data.dataset_rows(ws, path),
        lambda: data.add_images(ws, 'datasets/d', [path]),
        lambda: data.add_images(ws, path, []),
        lambda: data.add_images(ws, 'datasets/d', [cat]),
        lambda: data.scan_folder(ws, path),
        lambda: data.save_rows(ws, path, [['x.png', 'x']]),
        lambda: train_command(ws, 'run', TrainSettings(CONFIG, dataset=path)),
        lambda: train_command(ws, 'run', TrainSettings(CONFIG, base_model=path)),
        lambda: generate(ws, InferencerCache(), CONFIG, path, ['x.png']),
        lambda: generate(ws, InferencerCache(), CONFIG, 'a.pth', [cat]),
        lambda: generate(ws, InferencerCache(), CONFIG, 'a.pth', [path]),
        lambda: generate(
            ws, InferencerCache(), CONFIG, 'a.pth', ['x.png'], image_encoder=path
        ),
        lambda: files.convert(ws, path),
        lambda: files.info(ws, path),
        lambda: evaluation.evaluation_command(ws, CONFIG, path, True, ws.root),
    ]
    for call in calls:
        with pytest.raises(WorkspaceError, match='outside the workspace'):
            call()
    assert sorted(os.listdir(osp.dirname(ws.root))) == ['ws']  # nothing written beside
