"""A training's work dir: its ``last_checkpoint`` pointer and its lock.

The pointer names the newest complete checkpoint *relative to the work
dir*, so a moved work dir still resumes and a copied one resumes from its own
files, not the original's. Pointers of older releases hold an absolute path;
the checkpoint of that name inside the work dir is preferred to it.

The lock (``.lock``, an advisory ``flock``) keeps a second training out of a
work dir that one is using; the kernel drops it when its process ends, so a
crashed or killed run never leaves it stuck.
"""

import contextlib
import fcntl
import os
import os.path as osp
from collections.abc import Iterator

from .errors import CheckpointError, UserError
from .fileio import atomic_write_bytes

__all__ = [
    'POINTER',
    'write_pointer',
    'read_pointer',
    'last_checkpoint',
    'work_dir_lock',
    'earlier_checkpoints',
    'refuse_fresh_run_over',
]

POINTER = 'last_checkpoint'
LOCK = '.lock'


def write_pointer(work_dir: str, checkpoint: str) -> None:
    """Point ``work_dir``'s ``last_checkpoint`` at ``checkpoint``
    (atomically; relative when the checkpoint is inside the work dir)."""
    relative = osp.relpath(osp.abspath(checkpoint), osp.abspath(work_dir))
    target = checkpoint if relative.startswith(os.pardir) else relative
    atomic_write_bytes(osp.join(work_dir, POINTER), target.encode())


def read_pointer(work_dir: str) -> str | None:
    """The checkpoint ``work_dir``'s pointer names, as a path that exists;
    ``None`` when there is no pointer. An empty or dangling pointer raises
    :class:`CheckpointError`, one line."""
    pointer = osp.join(work_dir, POINTER)
    if not osp.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8', errors='replace') as f:
        named = f.read().strip()
    if not named:
        raise CheckpointError(
            f'{pointer}: is empty; pass the checkpoint to '
            'resume from: --resume WORK_DIR/iter_N.pth'
        )
    candidates = [osp.join(work_dir, named)]
    if osp.isabs(named):  # an older release's pointer, or an outside out_dir
        candidates = [osp.join(work_dir, osp.basename(named)), named]
    for candidate in candidates:
        if osp.isfile(candidate):
            return candidate
    raise CheckpointError(
        f'{pointer}: names {named}, which does not exist (deleted or not '
        'copied along); pass the checkpoint to resume from: --resume '
        'WORK_DIR/iter_N.pth'
    )


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint ``--resume`` without a path continues from."""
    found = read_pointer(work_dir)
    if found is None:
        raise CheckpointError(
            f'--resume: nothing to resume in {work_dir} (no {POINTER} file: '
            'no checkpoint was written there); drop --resume to start a '
            'fresh run, or pass --resume CHECKPOINT'
        )
    return found


def earlier_checkpoints(work_dir: str) -> list[str]:
    """The checkpoints (``iter_*.pth``, ``epoch_*.pth``) a run left in
    ``work_dir``, oldest first."""
    import glob

    found = [
        p
        for pattern in ('iter_*.pth', 'epoch_*.pth')
        for p in glob.glob(osp.join(work_dir, pattern))
    ]
    return sorted(found, key=osp.getmtime)


def refuse_fresh_run_over(
    work_dir: str, shown_as: str = '', ways_out: str = ''
) -> None:
    """A fresh run (no ``--resume``) must not overwrite or repoint an
    earlier run's checkpoints: stop with one line naming the two ways on."""
    old = earlier_checkpoints(work_dir)
    if not old and not osp.isfile(osp.join(work_dir, POINTER)):
        return
    latest = osp.basename(old[-1]) if old else POINTER
    raise UserError(
        f'{shown_as or work_dir}: holds the checkpoints of an earlier run (latest '
        f'{latest}); '
        + (
            ways_out
            or 'continue it with --resume, or start a new run with another --work-dir'
        )
    )


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[None]:
    """Hold ``work_dir`` for one training; a second one stops with one line."""
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors='replace').strip()
            raise UserError(
                f'{work_dir}: another training (process {holder or "?"}) is '
                'using this work dir; wait for it to end, or pass another '
                '--work-dir'
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
