"""Ctrl-C (SIGINT) at any moment of training, validation or saving: one
line, exit 130, a checkpoint that loads, never a traceback."""

import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from ..conftest import REPO, TINY_CONFIG, tiny_overrides

PAUSED = osp.join(osp.dirname(__file__), 'paused_train.py')


@pytest.mark.slow
@pytest.mark.parametrize(
    'point, checkpoint',
    [
        ('start', None),
        ('training', 'iter_3.pth'),
        ('validation', 'iter_3.pth'),
        ('saving', 'iter_3.pth'),
    ],
)
def test_ctrl_c_is_one_line_and_keeps_a_loadable_checkpoint(
    tiny_family, tmp_path, point, checkpoint
):
    work_dir, marker = tmp_path / 'run', tmp_path / 'paused'
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()] + [
        f'train_dataloader.dataset.ann_file={REPO}/data/mini_dataset/data.json',
        'train_cfg.max_epochs=2',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=3',
    ]
    process = subprocess.Popen(
        [
            sys.executable,
            PAUSED,
            point,
            str(marker),
            osp.join(REPO, 'tools/train.py'),
            TINY_CONFIG,
            '--work-dir',
            str(work_dir),
            '--cfg-options',
            *options,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO),
        start_new_session=True,
        # as a terminal starts a program: Ctrl-C at its default, whatever
        # this test worker inherited (Python keeps an ignored SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert 'Traceback' not in err and 'KeyboardInterrupt' not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith('interrupted')]
    if checkpoint is None:
        assert 'before the first checkpoint' in line, line
        assert not list(work_dir.glob('*.pth'))
        return
    saved = work_dir / checkpoint
    assert f'last checkpoint {saved}' in line and '--resume' in line, line
    assert (work_dir / 'last_checkpoint').read_text() == checkpoint
    state = torch.load(saved, weights_only=True)
    assert state['meta']['iter'] == 3 and state['state_dict']
    assert not [p for p in os.listdir(work_dir) if '.tmp-' in p]
