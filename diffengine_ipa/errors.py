"""Errors whose message tells the user what to fix, printed as one line."""

import errno
import signal
import sys
from typing import Callable

__all__ = [
    'UserError',
    'ModelSourceError',
    'DatasetError',
    'ImageError',
    'CheckpointError',
    'TrainingError',
    'StorageError',
    'error_line',
    'run_tool',
]


class UserError(Exception):
    """A problem with the user's input: a path, a file, a config value."""


class ModelSourceError(UserError):
    """A base model or image encoder could not be loaded."""


class DatasetError(UserError):
    """An annotation file or one of its records is unusable."""


class ImageError(UserError):
    """An image file that cannot be used; ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        shown = ''.join(  # a newline in a path must not break the line
            c if c.isprintable() else repr(c)[1:-1] for c in str(path)
        )
        super().__init__(f'{shown}: {reason}')
        self.path, self.reason = path, reason

    def __reduce__(self):  # crosses DataLoader worker processes
        return ImageError, (self.path, self.reason)


class CheckpointError(UserError):
    """A checkpoint or adapter file is not what the tool needs."""


class TrainingError(UserError):
    """Training cannot go on (e.g. the loss stays non-finite)."""


class StorageError(UserError):
    """A file could not be written (a full disk, no permission)."""


# Faults of the machine rather than of the program: one line, not a traceback.
_MACHINE_FAULTS = {
    errno.ENOSPC: 'the disk is full',
    errno.EDQUOT: 'the disk quota is exceeded',
    errno.EROFS: 'the file system is read-only',
}


def error_line(err: BaseException) -> str | None:
    """The one line a tool prints for ``err`` (``'error: ...'``): for a
    :class:`UserError` or a full or read-only disk; None for anything else
    (a bug: its traceback is what helps)."""
    if isinstance(err, UserError):
        return f'error: {_without_worker_traceback(str(err))}'
    if isinstance(err, OSError) and err.errno in _MACHINE_FAULTS:
        return (
            f'error: {err.filename or "a file"}: could not be written: '
            f'{_MACHINE_FAULTS[err.errno]} (free some space, then run again)'
        )
    return None


def run_tool(main: Callable[[], object]) -> None:
    """Run a command-line ``main``; a :class:`UserError`, or a full or
    read-only disk, exits 2 with one line (:func:`error_line`); Ctrl-C exits
    130 with one line (the ``KeyboardInterrupt``'s text, when a tool gave it
    one)."""
    try:
        main()
    except KeyboardInterrupt as err:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C too
        print(f'interrupted: {err or "Ctrl-C"}', file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except (UserError, OSError) as err:
        line = error_line(err)
        if line is None:
            raise
        print(line, file=sys.stderr)
        raise SystemExit(2) from None


def _without_worker_traceback(message: str) -> str:
    """A DataLoader worker re-raises our error with its traceback in the
    message; keep the error's own text."""
    if 'Original Traceback' not in message:
        return message
    last = message.rstrip().splitlines()[-1]  # "<module>.DatasetError: text"
    return last.split(': ', 1)[-1]
