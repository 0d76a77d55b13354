"""The page served beyond this machine: upload names cannot write outside
the dataset folder or make files a system cannot handle, paths with NUL
bytes are one line, and a non-local ``--host`` needs ``--auth``."""

import os.path as osp
import subprocess
import sys

import pytest

from diffengine_ipa.errors import UserError
from diffengine_ipa.webui import data
from diffengine_ipa.webui.server import serve
from diffengine_ipa.webui.workspace import Workspace, WorkspaceError, safe_upload_name

from ..conftest import REPO
from .conftest import IMAGES, put


@pytest.mark.parametrize(
    'name, safe',
    [
        ('../../etc/passwd.png', 'passwd.png'),
        ('/abs/path/cat.jpg', 'cat.jpg'),
        ('C:\\Users\\me\\cat.jpg', 'cat.jpg'),
        ('a\x00b\nc.png', 'a_b_c.png'),
        ('..', 'upload'),
        ('.hidden.png', 'hidden.png'),
        ('', 'upload'),
        ('CON', '_CON'),
        ('nul.png', '_nul.png'),
        ('com1.tar.gz', '_com1.tar.gz'),
        ('what?<>|*".png', 'what______.png'),
        ('trailing. . ', 'trailing'),
        ('\ud800.png', '_.png'),
    ],
)
def test_upload_names_are_sanitised(name, safe):
    assert safe_upload_name(name) == safe


def test_a_long_upload_name_is_cut_keeping_its_extension():
    name = safe_upload_name('é' * 300 + '.png')
    assert name.endswith('.png') and len(name.encode()) <= 200


def test_uploads_land_in_the_dataset_under_safe_names(tmp_path):
    ws = Workspace(str(tmp_path / 'ws'))
    uploads = [
        put(ws, osp.join(IMAGES, 'cat.jpg'), f'.gradio/up/{name}')
        for name in ('C:\\fakepath\\cat.jpg', 'CON.jpg', '.x.jpg', 'a\tb.jpg')
    ]
    rows = data.add_images(ws, 'datasets/mine', uploads, 'a cat')
    assert [row[0] for row in rows] == [
        'images/cat.jpg',
        'images/_CON.jpg',
        'images/x.jpg',
        'images/a_b.jpg',
    ]
    assert all(row[2] == 'ok' for row in rows)
    assert sorted(p.name for p in (tmp_path / 'ws/datasets/mine/images').iterdir()) == [
        '_CON.jpg',
        'a_b.jpg',
        'cat.jpg',
        'x.jpg',
    ]


@pytest.mark.parametrize(
    'path, message',
    [
        ('/etc/passwd', 'outside the workspace'),
        ('../../secret.png', 'outside the workspace'),
        ('.gradio/a\x00b.png', 'a path cannot hold a NUL byte'),
    ],
)
def test_upload_paths_outside_the_workspace_or_with_nul_are_one_line(
    tmp_path, path, message
):
    ws = Workspace(str(tmp_path / 'ws'))
    with pytest.raises(WorkspaceError, match=message) as err:
        data.add_images(ws, 'datasets/mine', [path], 'x')
    assert '\n' not in str(err.value)


def webui(*args):
    return subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/webui.py'), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    'args, message',
    [
        (
            ['--host', '0.0.0.0'],
            'error: --host 0.0.0.0 serves the page to the network, where anyone '
            'who reaches it can train, generate and read the workspace: give '
            '--auth USER:PASSWORD, or leave --host at 127.0.0.1',
        ),
        (
            ['--host', '0.0.0.0', '--auth', 'bob'],
            'error: --auth: give USER:PASSWORD, both non-empty',
        ),
        (['--auth', ':secret'], 'error: --auth: give USER:PASSWORD, both non-empty'),
    ],
)
def test_an_exposed_page_needs_a_login(args, message):
    result = webui(*args)
    assert (result.returncode, result.stderr) == (2, message + '\n')


def test_serve_refuses_a_network_host_without_auth(tmp_path):
    with pytest.raises(UserError, match='serving on 0.0.0.0 needs a login'):
        serve(str(tmp_path / 'ws'), host='0.0.0.0')
