"""The Train tab: knobs → the normal training command; one process per
work dir; progress, losses and samples read from the run's own logs."""

import argparse
import os
import os.path as osp
import re
import signal
import sys
import time

import pytest
from mmengine.config import DictAction

from diffengine_ipa.errors import DatasetError, UserError
from diffengine_ipa.user_config import load_user_config
from diffengine_ipa.webui import data, train_process
from diffengine_ipa.webui.train_options import TrainSettings, train_command
from diffengine_ipa.webui.train_process import (
    TrainingRuns,
    is_training,
    log_tail,
    parse_progress,
)
from diffengine_ipa.webui.workspace import Workspace
from diffengine_ipa.work_dir import work_dir_lock

from .conftest import CONFIG, IMAGES, put


def make_dataset(ws, names=('cat.jpg', 'rocket.jpg'), folder='datasets/d'):
    uploads = [put(ws, osp.join(IMAGES, n), f'.gradio/{n}') for n in names]
    return data.add_images(ws, folder, uploads, 'a photo')


def as_train_py_reads_it(command: list[str]):
    """The config tools/train.py builds from this command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument('script')
    parser.add_argument('config')
    parser.add_argument('--work-dir')
    parser.add_argument('--amp', action='store_true')
    parser.add_argument('--resume', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(command[1:])
    return args, load_user_config(args.config, args.cfg_options)


def test_knobs_become_the_training_command(tiny_workspace, tmp_path):
    ws = Workspace(str(tmp_path / 'ws'))
    make_dataset(ws)
    settings = TrainSettings(
        CONFIG,
        'datasets/d',
        epochs=3,
        lr=2e-4,
        resolution=32,
        batch_size=2,
        precision='amp',
        sample_every=1,
        checkpoint_every=2,
    )
    command = train_command(ws, 'run1', settings, resume=True)
    assert command[0] == sys.executable and command[1].endswith('tools/train.py')
    args, cfg = as_train_py_reads_it(command)
    assert args.config.endswith(f'configs/ip_adapter/{CONFIG}')
    assert args.work_dir == osp.join(ws.root, 'runs', 'run1')
    assert args.amp and args.resume
    assert cfg.train_cfg.max_epochs == 3 and cfg.train_cfg.val_interval == 1
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.train_dataloader.batch_size == 2
    sizes = {s['type']: s.get('size') for s in cfg.train_dataloader.dataset.pipeline}
    assert sizes['ResizeShortEdge'] == sizes['CenterCrop'] == 32
    (hook,) = [h for h in cfg.custom_hooks if h['type'] == 'IPAdapterVisualizationHook']
    assert hook['interval'] == 1
    assert cfg.default_hooks.checkpoint.interval == 2
    assert cfg.default_hooks.logger.interval == 1
    assert cfg.train_dataloader.dataset.ann_file == osp.join(
        ws.root, 'datasets/d/data.json'
    )
    tiny = osp.join(ws.root, 'models', 'tiny_models')
    assert cfg.model.pretrained_model_name_or_path == osp.join(tiny, 'tiny_sd15')
    assert cfg.val_evaluator.clip_model == osp.join(tiny, 'tiny_clip')
    # Empty knobs keep the config's values.
    _, plain = as_train_py_reads_it(
        train_command(ws, 'run1', TrainSettings(CONFIG, 'datasets/d'))
    )
    assert plain.train_cfg.max_epochs == 10 and plain.train_cfg.val_interval == 5


def test_bad_data_and_knobs_stop_before_training(tmp_path):
    ws = Workspace(str(tmp_path / 'ws'))
    with pytest.raises(DatasetError, match='no data.json yet'):
        train_command(ws, 'r', TrainSettings(CONFIG, 'datasets/none'))
    make_dataset(ws)
    data.save_rows(
        ws, 'datasets/d', [['images/cat.jpg', ''], ['images/rocket.jpg', 'a rocket']]
    )
    with pytest.raises(
        DatasetError,
        match=r'1 of 2 records are unusable:\n'
        r'.*record 0 \(images/cat.jpg\): caption',
    ):
        train_command(ws, 'r', TrainSettings(CONFIG, 'datasets/d'))
    with pytest.raises(UserError, match='epochs must be positive'):
        train_command(ws, 'r', TrainSettings(CONFIG, epochs=0))
    with pytest.raises(UserError, match='precision'):
        train_command(ws, 'r', TrainSettings(CONFIG, precision='fp8'))


def test_progress_and_eta_from_the_runners_log_lines():
    log = (
        '11/28 09:09:23 - mmengine - INFO - Epoch(train) [1][5/5]  lr: '
        '1.0000e-04  eta: 0:00:15  time: 3.1256  loss: 1.1656\n'
        '11/28 09:09:42 - mmengine - INFO - Epoch(train) [2][3/5]  lr: '
        '1.0000e-04  eta: 0:00:07  time: 3.8181  loss: 1.1453\n'
        '11/28 09:10:40 - mmengine - INFO - Epoch(val) [2][3/3]  ipa/clip_i: '
        '0.8791\n'
    )
    assert parse_progress(log, max_epochs=4) == (8, 20, '0:00:07')
    assert parse_progress(log, max_epochs=None) == (8, None, '0:00:07')
    assert parse_progress('Iter(train) [ 70/100]  eta: 0:01:00', None) == (
        70,
        100,
        '0:01:00',
    )
    assert parse_progress('loading models\n', 10) == (0, None, None)
    table = (
        'before_run:\n(VERY_HIGH   ) RuntimeInfoHook   \n'
        '(NORMAL      ) IterTimerHook                      \n'
        ' -------------------- \n'
    )
    assert log_tail(table + 'Epoch(train) [1][1/1]\n') == 'Epoch(train) [1][1/1]'


@pytest.fixture
def fake_training(monkeypatch):
    """Runs whose 'training' is a short Python process."""

    def use(code: str):
        monkeypatch.setattr(
            train_process,
            'train_command',
            lambda *args, **kwargs: [sys.executable, '-c', code],
        )

    return use


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.2)


def test_one_training_per_work_dir_stop_and_exit_codes(tmp_path, fake_training):
    ws = Workspace(str(tmp_path / 'ws'))
    runs, other_page = TrainingRuns(), TrainingRuns()
    settings = TrainSettings(CONFIG)
    fake_training('import time; time.sleep(60)')
    runs.start(ws, 'a', settings)
    assert is_training(ws.run_dir('a'))
    assert runs.status(ws, 'a').state == 'running'
    for page in (runs, other_page):  # also from another page server
        with pytest.raises(UserError, match='already running'):
            page.start(ws, 'a', settings)
    runs.start(ws, 'b', settings)  # another work dir: fine
    assert other_page.stop(ws, 'b') == 'runs/b: stopped'  # by its lock's pid
    assert runs.stop(ws, 'a') == 'runs/a: stopped'
    assert runs.status(ws, 'a').state == 'stopped'
    assert not is_training(ws.run_dir('a')) and not is_training(ws.run_dir('b'))
    assert runs.stop(ws, 'a') == 'runs/a: no training is running'
    fake_training('raise SystemExit(3)')
    runs.start(ws, 'a', settings)
    wait_until(lambda: runs.status(ws, 'a').state != 'running')
    assert runs.status(ws, 'a').state == 'failed (exit 3)'
    fake_training('print("done: 2 iterations in 0.1 s")')  # the summary
    runs.resume(ws, 'a')  # the run's recorded settings
    wait_until(lambda: runs.status(ws, 'a').state != 'running')
    status = runs.status(ws, 'a')
    assert status.state == 'finished' and status.log_tail.endswith('0.1 s')
    assert TrainingRuns().status(ws, 'a').state == 'finished'  # a new page
    assert TrainingRuns().status(ws, 'never').state == 'not started'


def test_a_second_start_is_refused_and_a_restarted_page_finds_the_runs(
    tmp_path, fake_training
):
    """Two tabs (one page server) or two servers: one training per work
    dir, the second Start one line; a new server reads each run's state from
    its work dir; a killed training's lock is not stale."""
    ws = Workspace(str(tmp_path / 'ws'))
    runs, settings = TrainingRuns(), TrainSettings(CONFIG)
    endings = {
        'going': 'import time; time.sleep(60)',
        'done': 'print("done: 4 iterations in 1.0 s\\n  checkpoint x")',
        'broken': 'import sys; print("error: data.json: bad"); sys.exit(2)',
        'crashed': 'raise RuntimeError("boom")',
        'stopped': 'import time; time.sleep(60)',
    }
    for run, code in endings.items():
        fake_training(code)
        runs.start(ws, run, settings)
    runs.stop(ws, 'stopped')
    for run in ('done', 'broken', 'crashed'):
        wait_until(lambda run=run: not is_training(ws.run_dir(run)))
    going = ws.run_dir('going')
    with open(osp.join(going, 'iter_2.pth'), 'w') as f:
        f.write('a checkpoint')  # Start must say running, not "press Resume"
    tab = TrainingRuns()  # another tab's view: this server's, or a new one's
    for page in (runs, tab):
        for press in (page.start, page.resume):
            with pytest.raises(
                UserError,
                match=r'^runs/going: a training is already running in this '
                r'work dir \(process \d+ since \d\d:\d\d:\d\d, perhaps from '
                r'another tab\); its progress is shown here',
            ):
                press(ws, 'going', settings)
    restarted = TrainingRuns()  # the page server killed and started again
    assert {run: restarted.status(ws, run).state for run in endings} == {
        'going': 'running',
        'done': 'finished',
        'broken': 'failed',
        'crashed': 'failed',
        'stopped': 'stopped',
    }
    assert restarted.status(ws, 'broken').log_tail.endswith('error: data.json: bad')
    with open(osp.join(ws.run_dir('done'), 'webui_run.json'), 'wb') as f:
        f.write(b'{"settings": \xff')  # damaged: the logs still tell the state
    assert restarted.status(ws, 'done').state == 'finished'
    with pytest.raises(UserError, match=r'^runs/done/webui_run.json: damaged'):
        restarted.resume(ws, 'done')
    pid = int(open(osp.join(going, train_process.LOCK_FILE)).read())
    os.kill(pid, signal.SIGKILL)  # the lock file stays; the lock does not
    wait_until(lambda: not is_training(going))
    assert restarted.status(ws, 'going').state == 'ended without a last line (killed?)'
    fake_training('print("done: 6 iterations in 1.0 s")')
    restarted.resume(ws, 'going')  # not refused: no stale lock
    wait_until(lambda: restarted.status(ws, 'going').state == 'finished')
    # A training from a shell (tools/train.py holds the work dir's .lock).
    with work_dir_lock(ws.run_dir('shell')):
        assert TrainingRuns().status(ws, 'shell').state == 'running'
        with pytest.raises(UserError, match=rf'process {os.getpid()}, perhaps'):
            TrainingRuns().start(ws, 'shell', settings)
    assert TrainingRuns().status(ws, 'shell').state == 'not running'


@pytest.mark.slow
def test_train_then_resume_for_more_epochs(tiny_workspace):
    """The real tools/train.py: progress, losses, samples, checkpoints; then
    --resume goes on from the last checkpoint."""
    ws, runs = tiny_workspace, TrainingRuns()
    make_dataset(ws, folder='datasets/two')
    settings = TrainSettings(
        CONFIG,
        'datasets/two',
        epochs=2,
        batch_size=1,
        sample_every=2,
        checkpoint_every=2,
    )
    command = runs.start(ws, 'resumed', settings)
    assert 'tools/train.py' in command and '--resume' not in command
    wait_until(lambda: runs.status(ws, 'resumed').state != 'running', 600)
    status = runs.status(ws, 'resumed')
    assert status.state == 'finished', status.log_tail
    assert (status.done, status.total) == (4, 4)
    assert [step for step, _ in status.losses] == [1, 2, 3, 4]
    assert status.sample_step == 2 and len(status.samples) == 3  # epoch 2
    assert osp.isfile(osp.join(ws.run_dir('resumed'), 'iter_4.pth'))
    settings.epochs = 3
    assert '--resume' in runs.resume(ws, 'resumed', settings)
    wait_until(lambda: runs.status(ws, 'resumed').state != 'running', 600)
    status = runs.status(ws, 'resumed')
    assert status.state == 'finished', status.log_tail
    assert (status.done, status.total) == (6, 6)
    assert [step for step, _ in status.losses] == [1, 2, 3, 4, 5, 6]
    assert osp.isfile(osp.join(ws.run_dir('resumed'), 'iter_6.pth'))
    with open(osp.join(ws.run_dir('resumed'), 'webui_train.log')) as f:
        assert re.search(r'Load checkpoint from \S+/runs/resumed/iter_4\.pth', f.read())
    assert TrainingRuns().status(ws, 'resumed').state == 'finished'  # from disk


def test_start_on_a_finished_run_keeps_its_checkpoints(tmp_path, fake_training):
    ws = Workspace(str(tmp_path / 'ws'))
    runs, settings = TrainingRuns(), TrainSettings(CONFIG)
    fake_training('print("done")')
    runs.start(ws, 'a', settings)
    wait_until(lambda: runs.status(ws, 'a').state != 'running')
    work_dir = ws.run_dir('a')
    for name, text in (('iter_4.pth', 'weights'), ('last_checkpoint', 'iter_4.pth')):
        with open(osp.join(work_dir, name), 'w') as f:
            f.write(text)
    before = sorted(os.listdir(work_dir))
    with pytest.raises(
        UserError,
        match=r'^runs/a: holds the checkpoints of '
        r'an earlier run \(latest iter_4\.pth\); press Resume',
    ):
        runs.start(ws, 'a', settings)
    assert sorted(os.listdir(work_dir)) == before
    with open(osp.join(work_dir, 'iter_4.pth')) as f:
        assert f.read() == 'weights'
    runs.resume(ws, 'a')  # the way on
    wait_until(lambda: runs.status(ws, 'a').state != 'running')
    assert runs.status(ws, 'a').state == 'finished'
