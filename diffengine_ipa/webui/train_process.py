"""Training runs as processes: start, stop, resume, and what they report.

A run is ``tools/train.py`` in a subprocess (which calls
:func:`diffengine_ipa.apis.train.train`, as ``mim train`` does), so it is
the run a shell would start: same work dir, checkpoints and ``--resume``.
Its console output goes to ``<work_dir>/webui_train.log``; progress and ETA
come from the runner's log lines there, the loss and reference-gain curves
from ``vis_data/scalars.json`` and the samples from ``vis_data/vis_image/``.

One training per work dir: the page takes an exclusive ``flock`` on
``<work_dir>/.webui_train.lock`` and hands it to the training process, which
holds it as long as it lives (also after the page is closed or restarted;
another page server sees it too); the training also holds the work dir's own
lock (``.lock``, :func:`~diffengine_ipa.work_dir.work_dir_lock`), so a run
started from a shell counts as running too. The kernel drops a lock when its
process ends, so a killed run never leaves a stale one. A second Start into
a running work dir (another tab, another page server) is refused with one
line naming the process; the tab shows the running one.

A run's state is read from its work dir, so a restarted page server finds
its runs again: running while a lock is held, else what the console log's
last line says (the summary's ``done:``, ``error:``, ``interrupted:``, the
page's own ``[webui] stopped``).
"""

import fcntl
import os
import os.path as osp
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from ..errors import UserError
from ..run_logs import (
    reference_gains,
    reference_warning,
    sample_images,
    training_records,
)
from ..work_dir import LOCK as TRAINING_LOCK
from ..work_dir import refuse_fresh_run_over
from . import kit
from .train_options import (
    TrainSettings,
    read_run_info,
    train_command,
    write_run_info,
)
from .workspace import Workspace

__all__ = [
    'TrainingRuns',
    'TrainStatus',
    'CONSOLE_LOG',
    'parse_progress',
    'log_tail',
    'is_training',
    'run_ending',
]

CONSOLE_LOG = 'webui_train.log'
LOCK_FILE = '.webui_train.lock'
STOPPED_LINE = '[webui] stopped from the page'
# How a run's console log ends, last line first: the state it means.
ENDINGS = (
    (re.compile(r'^done: \d+ iterations'), 'finished'),
    (re.compile(r'^interrupted: '), 'stopped'),
    (re.compile(r'^' + re.escape(STOPPED_LINE)), 'stopped'),
    (re.compile(r'^error: '), 'failed'),
    (re.compile(r'^(Traceback \(most recent call last\)|\w*Error: )'), 'failed'),
)
EPOCH_LINE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')
ITER_LINE = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')
ETA = re.compile(r'eta: (\S+)')
# MMEngine's table of hooks by stage, printed when a runner is built.
HOOK_TABLE = re.compile(
    r'^(\((VERY_HIGH|HIGHEST|HIGH|ABOVE_NORMAL|NORMAL|'
    r'BELOW_NORMAL|LOW|VERY_LOW|LOWEST)\s*\)\s+\w+|'
    r'\s*-{10,}|(before|after)_\w+:)\s*$'
)


@dataclass
class TrainStatus:
    """What the Train tab shows of a run."""

    state: str = 'not started'  # not started | running | finished | stopped | failed
    done: int = 0  # iterations
    total: int | None = None
    eta: str | None = None
    log_tail: str = ''
    losses: list[tuple[int, float]] = field(default_factory=list)
    # (iteration, reference gain, no-reference gain) per validation
    gains: list[tuple[int, float, float]] = field(default_factory=list)
    reference_warning: str | None = None  # the adapter ignores its reference
    samples: list[str] = field(default_factory=list)  # the latest step's
    sample_step: int | None = None
    command: str = ''


def parse_progress(
    log_text: str, max_epochs: int | None
) -> tuple[int, int | None, str | None]:
    """``(iterations done, total, eta)`` from the runner's last train line."""
    done, total, eta = 0, None, None
    lines = [line for line in log_text.splitlines() if '(train)' in line]
    if not lines:
        return done, total, eta
    last = lines[-1]
    if match := EPOCH_LINE.search(last):
        epoch, step, per_epoch = map(int, match.groups())
        done = (epoch - 1) * per_epoch + step
        total = max_epochs * per_epoch if max_epochs else None
    elif match := ITER_LINE.search(last):
        done, total = map(int, match.groups())
    if match := ETA.search(last):
        eta = match.group(1)
    return done, total, eta


def log_tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a tool's console output, without
    MMEngine's hook table."""
    kept = [line for line in text.splitlines() if not HOOK_TABLE.match(line)]
    return '\n'.join(kept[-lines:])


def _read_tail(path: str, size: int = 65536) -> str:
    if not osp.isfile(path):
        return ''
    with open(path, 'rb') as f:
        f.seek(max(0, osp.getsize(path) - size))
        return f.read().decode('utf-8', errors='replace')


def _try_lock(path: str) -> int | None:
    """An fd holding the exclusive lock on ``path``, or None if it is held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _held(path: str) -> bool:
    if not osp.isfile(path):
        return False
    fd = _try_lock(path)
    if fd is None:
        return True
    os.close(fd)
    return False


def is_training(work_dir: str) -> bool:
    """Whether a training holds the work dir: one a page started (its lock)
    or any other (the training's own ``.lock``)."""
    return any(_held(osp.join(work_dir, n)) for n in (LOCK_FILE, TRAINING_LOCK))


def _holder(work_dir: str) -> int | None:
    """The pid a held lock of the work dir names."""
    for name in (LOCK_FILE, TRAINING_LOCK):
        path = osp.join(work_dir, name)
        if _held(path):
            with open(path, errors='replace') as f:
                text = f.read().strip()
            if text.isdigit():
                return int(text)
    return None


def run_ending(console: str) -> str:
    """A run's state from the end of its console log, when no process of
    it is known: ``finished``, ``stopped``, ``failed``, or ``ended without
    a last line`` (killed, or the machine went down)."""
    lines = console.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith('$ ')]
    for line in reversed(lines[starts[-1] + 1 if starts else 0 :]):
        for pattern, state in ENDINGS:
            if pattern.match(line.strip()):
                return state
        if '(train)' in line:
            break  # it trained after any ending: that was not its last word
    return 'ended without a last line (killed?)'


class TrainingRuns:
    """The training processes of one page server (any number of work dirs,
    one process each)."""

    def __init__(self) -> None:
        self._procs: dict[str, subprocess.Popen] = {}
        self._stopped: set[str] = set()
        self._mutex = threading.Lock()

    def start(
        self, ws: Workspace, run: str, settings: TrainSettings, resume: bool = False
    ) -> str:
        """Start ``tools/train.py`` for run ``run`` (``--resume``: from the
        work dir's last checkpoint); the command, as text."""
        self.refuse_if_running(ws, run)  # before the checkpoints' verdict
        command = train_command(ws, run, settings, resume)
        work_dir = ws.run_dir(run)
        if not resume:  # a finished run's checkpoints stay its own
            refuse_fresh_run_over(
                work_dir,
                f'runs/{run}',
                'press Resume to continue it, or give a new run name',
            )
        os.makedirs(work_dir, exist_ok=True)
        with self._mutex:  # two tabs of this page: one gets the lock
            fd = _try_lock(osp.join(work_dir, LOCK_FILE))
            if fd is not None and _held(osp.join(work_dir, TRAINING_LOCK)):
                os.close(fd)  # a training from a shell holds it
                fd = None
            if fd is None:
                self.refuse_if_running(ws, run)
                raise UserError(f'runs/{run}: a training is already running here')
            try:
                write_run_info(ws, run, settings, command)
                with open(osp.join(work_dir, CONSOLE_LOG), 'ab') as log:
                    log.write(f'$ {subprocess.list2cmdline(command)}\n'.encode())
                    log.flush()
                    proc = kit.start_tool(
                        command, ws.root, log, pass_fds=(fd,), start_new_session=True
                    )
                os.ftruncate(fd, 0)
                os.write(fd, str(proc.pid).encode())
            finally:
                os.close(fd)  # the training process keeps the lock
            self._procs[work_dir] = proc
            self._stopped.discard(work_dir)
        return subprocess.list2cmdline(command)

    def refuse_if_running(self, ws: Workspace, run: str) -> None:
        """One line when a training (from any tab, page server or shell)
        holds run ``run``'s work dir: the process, since when, the ways on."""
        work_dir = ws.run_dir(run)
        if not is_training(work_dir):
            return
        pid = _holder(work_dir)
        since = ''
        try:
            started = (read_run_info(ws, run) or {}).get('started')
        except UserError:
            started = None
        if isinstance(started, (int, float)):
            since = time.strftime(' since %H:%M:%S', time.localtime(started))
        raise UserError(
            f'runs/{run}: a training is already running in this work dir '
            f'(process {pid or "?"}{since}, perhaps from another tab); its '
            'progress is shown here: watch it, Stop it first, or give a new '
            'run name'
        )

    def resume(
        self, ws: Workspace, run: str, settings: TrainSettings | None = None
    ) -> str:
        """Start again with ``--resume``, with ``settings`` or the run's own."""
        if settings is None:
            info = read_run_info(ws, run)
            if info is None:
                raise UserError(
                    f'runs/{run}: not started from this page; give its settings'
                )
            settings = TrainSettings(**info['settings'])
        return self.start(ws, run, settings, resume=True)

    def stop(self, ws: Workspace, run: str, timeout: float = 20.0) -> str:
        """Terminate the run's training (SIGTERM to its process group, SIGKILL
        after ``timeout`` s). Checkpoints are written atomically, so
        ``--resume`` goes on from the last complete one."""
        work_dir = ws.run_dir(run)
        if not is_training(work_dir):
            return f'runs/{run}: no training is running'
        proc = self._procs.get(work_dir)
        pid = proc.pid if proc else _holder(work_dir)
        if pid is None:
            raise UserError(f'runs/{run}: cannot tell which process trains')
        self._stopped.add(work_dir)
        self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_training(work_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        if is_training(work_dir):
            self._signal(pid, signal.SIGKILL)
        if proc:
            proc.wait(timeout=timeout)
        with open(osp.join(work_dir, CONSOLE_LOG), 'a') as log:
            log.write(f'{STOPPED_LINE} at {time.strftime("%H:%M:%S")}\n')
        return f'runs/{run}: stopped'

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        """To the process group a page's training leads, else to the one
        process (a training started from a shell)."""
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def status(self, ws: Workspace, run: str) -> TrainStatus:
        """The run's state, progress, ETA, log tail, losses and samples."""
        work_dir = ws.run_dir(run)
        if not osp.isdir(work_dir):
            return TrainStatus()
        try:
            info = read_run_info(ws, run) or {}
        except UserError:  # a damaged record: the logs still tell
            info = {}
        console = _read_tail(osp.join(work_dir, CONSOLE_LOG))
        done, total, eta = parse_progress(console, info.get('max_epochs'))
        samples = sample_images(work_dir)
        step = max(samples) if samples else None
        return TrainStatus(
            state=self._state(work_dir, console),
            done=done,
            total=total,
            eta=eta,
            log_tail=log_tail(console),
            losses=[
                (s, float(r['loss'])) for s, r in training_records(work_dir).items()
            ],
            gains=[
                (s, g.get('reference_gain', 0.0), g.get('no_reference_gain', 0.0))
                for s, g in reference_gains(work_dir).items()
            ],
            reference_warning=reference_warning(work_dir),
            samples=samples.get(step, []),
            sample_step=step,
            command=subprocess.list2cmdline(info.get('command', [])),
        )

    def _state(self, work_dir: str, console: str) -> str:
        if is_training(work_dir):
            return 'running'
        proc = self._procs.get(work_dir)
        if proc is None:  # another page server's, an earlier one's, a shell's
            if osp.isfile(osp.join(work_dir, CONSOLE_LOG)):
                return run_ending(console)
            return 'not running' if os.listdir(work_dir) else 'not started'
        code = proc.wait()  # it let go of the lock: it has ended
        if work_dir in self._stopped:
            return 'stopped'
        return 'finished' if code == 0 else f'failed (exit {code})'

    def stop_all(self) -> None:
        """Terminate every training this page started (at its shutdown)."""
        for proc in list(self._procs.values()):
            if proc.poll() is None:
                self._signal(proc.pid, signal.SIGTERM)
