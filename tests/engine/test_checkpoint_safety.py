"""Checkpoints survive kills, full disks, moved work dirs and a second run."""

import collections
import os
import subprocess
import sys

import pytest
from mmengine.fileio import get_file_backend
from mmengine.logging import MessageHub, MMLogger

import diffengine_ipa.fileio as fileio
from diffengine_ipa.engine import AtomicCheckpointHook, AtomicLocalBackend
from diffengine_ipa.errors import CheckpointError, StorageError, UserError
from diffengine_ipa.work_dir import (
    last_checkpoint,
    read_pointer,
    work_dir_lock,
    write_pointer,
)

from ..conftest import REPO


class Killed(BaseException):
    """What kill -9 does to the code after it: nothing more runs."""


class FakeRunner:
    """What AtomicCheckpointHook uses of a runner; saves as MMEngine does
    (the ``atomic_local`` backend's ``put``)."""

    def __init__(self, work_dir):
        self.work_dir = str(work_dir)
        self.message_hub = MessageHub.get_instance(f'safety_{id(self)}')
        self.logger = MMLogger.get_current_instance()

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        AtomicLocalBackend().put(
            f'complete {filename}'.encode(), os.path.join(out_dir, filename)
        )


def make_hook(runner, max_keep_ckpts):
    hook = AtomicCheckpointHook(
        interval=1, by_epoch=False, max_keep_ckpts=max_keep_ckpts
    )
    hook.out_dir = runner.work_dir
    hook.file_backend = get_file_backend(runner.work_dir)
    hook.keep_ckpt_ids = collections.deque()
    return hook


def assert_resumable(work_dir):
    """The pointer names a complete checkpoint."""
    found = read_pointer(str(work_dir))
    name = os.path.basename(found)
    with open(found, 'rb') as f:
        assert f.read() == f'complete {name}'.encode()


def save_killed_at(hook, runner, step, kill_at, monkeypatch) -> list[str]:
    """Save ``step``, killed at the ``kill_at``-th rename or removal; the
    file operations that ran."""
    replace, remove = os.replace, os.remove
    events = []

    def count(real, *args):
        events.append(real.__name__)
        if len(events) == kill_at:
            raise Killed
        return real(*args)

    monkeypatch.setattr(fileio.os, 'replace', lambda *a: count(replace, *a))
    monkeypatch.setattr(hook.file_backend, 'remove', lambda *a: count(remove, *a))
    try:
        hook._save_checkpoint_with_step(runner, step, {})
    except Killed:
        pass
    finally:
        monkeypatch.undo()
    return events


@pytest.mark.parametrize('max_keep_ckpts', [1, 3])
def test_a_kill_at_any_moment_of_a_save_leaves_a_checkpoint(
    tmp_path, monkeypatch, max_keep_ckpts
):
    """Kill the save at each of its steps (the checkpoint's rename, the
    pointer's, the removal of the old checkpoint), with max_keep_ckpts=1
    too: the pointer always names a complete checkpoint (MMEngine's order
    deleted the old one first)."""
    for kill_at in range(1, 5):
        work_dir = tmp_path / f'kill_{kill_at}'
        os.makedirs(work_dir)
        runner = FakeRunner(work_dir)
        hook = make_hook(runner, max_keep_ckpts)
        for step in range(1, max_keep_ckpts + 2):
            hook._save_checkpoint_with_step(runner, step, {})
        events = save_killed_at(hook, runner, max_keep_ckpts + 2, kill_at, monkeypatch)
        assert_resumable(work_dir)
    assert events == ['replace', 'replace', 'remove']  # checkpoint, pointer


def test_stale_temporaries_are_removed_at_the_next_start(tmp_path):
    gone = subprocess.run(
        [sys.executable, '-c', 'import os; print(os.getpid())'],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(gone.stdout)
    stale = tmp_path / f'.iter_5.tmp-{dead}.pth'
    stale.write_bytes(b'half a checkpoint')
    older = tmp_path / f'.iter_4.pth.tmp-{dead}'  # an earlier release's name
    older.write_bytes(b'half')
    alive = tmp_path / f'.iter_6.tmp-{os.getppid()}.pth'  # a running writer
    alive.write_bytes(b'being written')
    runner = FakeRunner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, by_epoch=False)
    hook.before_train(runner)
    assert not stale.exists() and not older.exists() and alive.exists()


def full_disk_at(path):
    """Make the next atomic write of ``path`` by this process hit ENOSPC:
    its temporary file is /dev/full."""
    stem, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(os.path.dirname(path), f'.{stem}.tmp-{os.getpid()}{ext}')
    os.symlink('/dev/full', tmp)


@pytest.mark.skipif(not os.path.exists('/dev/full'), reason='needs /dev/full')
def test_a_full_disk_during_a_save_is_one_line_and_keeps_what_was_there(tmp_path):
    runner = FakeRunner(tmp_path)
    hook = make_hook(runner, 1)
    hook._save_checkpoint_with_step(runner, 1, {})
    full_disk_at(str(tmp_path / 'iter_2.pth'))
    with pytest.raises(StorageError) as err:
        hook._save_checkpoint_with_step(runner, 2, {})
    assert str(err.value) == (
        f'{tmp_path / "iter_2.pth"}: could not be '
        'written (No space left on device); nothing '
        'was written'
    )
    assert sorted(os.listdir(tmp_path)) == ['iter_1.pth', 'last_checkpoint']
    assert_resumable(tmp_path)

    full_disk_at(str(tmp_path / 'iter_1.pth'))  # over an existing file
    with pytest.raises(StorageError, match='the previous file is intact'):
        fileio.atomic_write_bytes(str(tmp_path / 'iter_1.pth'), b'new' * 9999)
    assert_resumable(tmp_path)


def test_pointer_is_relative_so_moved_and_copied_work_dirs_resume(tmp_path):
    original = tmp_path / 'run'
    original.mkdir()
    (original / 'iter_5.pth').write_bytes(b'complete iter_5.pth')
    write_pointer(str(original), str(original / 'iter_5.pth'))
    assert (original / 'last_checkpoint').read_text() == 'iter_5.pth'
    moved = tmp_path / 'moved'
    original.rename(moved)
    assert last_checkpoint(str(moved)) == str(moved / 'iter_5.pth')

    # A copy of an older release's work dir: the pointer is absolute, but
    # the copy resumes from its own file, not the original's.
    copy = tmp_path / 'copy'
    copy.mkdir()
    (copy / 'iter_5.pth').write_bytes(b'complete iter_5.pth')
    (copy / 'last_checkpoint').write_text(str(moved / 'iter_5.pth'))
    assert last_checkpoint(str(copy)) == str(copy / 'iter_5.pth')


@pytest.mark.parametrize(
    'pointer, message',
    [
        (None, 'nothing to resume in'),
        ('', 'is empty'),
        ('iter_9.pth', 'names iter_9.pth, which does not exist'),
        ('/elsewhere/iter_9.pth', 'names /elsewhere/iter_9.pth, which does not'),
    ],
)
def test_resume_mistakes_are_one_line(tmp_path, pointer, message):
    if pointer is not None:
        (tmp_path / 'last_checkpoint').write_text(pointer)
    with pytest.raises(CheckpointError, match=message) as err:
        last_checkpoint(str(tmp_path))
    assert '\n' not in str(err.value)


def test_a_second_training_in_a_work_dir_stops(tmp_path):
    with work_dir_lock(str(tmp_path)):
        with pytest.raises(UserError) as err:
            with work_dir_lock(str(tmp_path)):
                pass
    assert str(err.value) == (
        f'{tmp_path}: another training (process {os.getpid()}) is using this '
        'work dir; wait for it to end, or pass another --work-dir'
    )
    with work_dir_lock(str(tmp_path)):  # released when the first ended
        pass


def test_a_killed_training_does_not_leave_its_work_dir_locked(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            '-c',
            'import sys, time; from diffengine_ipa.work_dir import work_dir_lock\n'
            f'with work_dir_lock({str(tmp_path)!r}):\n'
            '    print("locked", flush=True); time.sleep(60)',
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO),
    )
    assert holder.stdout.readline().strip() == 'locked'
    with pytest.raises(UserError, match='another training'):
        with work_dir_lock(str(tmp_path)):
            pass
    holder.kill()  # SIGKILL: no cleanup runs
    holder.wait()
    with work_dir_lock(str(tmp_path)):
        pass
