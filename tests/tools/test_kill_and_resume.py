"""kill -9 mid-epoch, then --resume: the loss curve of an uninterrupted run."""

import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

from ..conftest import REPO, TINY_CONFIG, tiny_overrides
from .helpers import run_tool


def losses_by_run(work_dir) -> list[dict[int, float]]:
    """Per run in ``work_dir`` (oldest first): the loss of each iteration."""
    runs = []
    for path in sorted(glob.glob(osp.join(work_dir, '*/vis_data/scalars.json'))):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        runs.append({r['iter']: r['loss'] for r in records if 'loss' in r})
    return runs


def test_kill_mid_epoch_then_resume_matches_uninterrupted(tiny_family, tmp_path):
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()] + [
        f'train_dataloader.dataset.ann_file={REPO}/data/mini_dataset/data.json',
        'train_cfg.max_epochs=2',
        'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=3',
        'default_hooks.logger.interval=1',
        'log_processor.window_size=1',
    ]
    whole = tmp_path / 'whole'
    run_tool('train.py', TINY_CONFIG, '--work-dir', whole, '--cfg-options', *options)
    (expected,) = losses_by_run(whole)
    assert sorted(expected) == list(range(1, 11))

    killed = tmp_path / 'killed'
    process = subprocess.Popen(
        [
            sys.executable,
            osp.join(REPO, 'tools/train.py'),
            TINY_CONFIG,
            '--work-dir',
            str(killed),
            '--cfg-options',
            *options,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=REPO),
    )
    pointer = killed / 'last_checkpoint'
    deadline = time.monotonic() + 120
    while not pointer.exists() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)  # mid-epoch (5 iterations each)
    assert process.wait() == -signal.SIGKILL
    last = pointer.read_text()
    assert last.endswith('iter_3.pth') and not (killed / 'iter_10.pth').exists()

    run_tool(
        'train.py',
        TINY_CONFIG,
        '--work-dir',
        killed,
        '--resume',
        '--cfg-options',
        *options,
    )
    interrupted, resumed = losses_by_run(killed)
    assert sorted(resumed) == list(range(4, 11))  # from iter_3.pth on
    for losses in (interrupted, resumed):
        for step, loss in losses.items():
            assert abs(loss - expected[step]) <= 1e-6 * abs(loss), step
    assert (killed / 'iter_10.pth').exists()
