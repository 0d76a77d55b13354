"""Errors whose message tells the user what to fix, printed as one line."""
import sys
from typing import Callable

__all__ = ['UserError', 'ModelSourceError', 'DatasetError', 'ImageError',
           'CheckpointError', 'TrainingError', 'run_tool']


class UserError(Exception):
    """A problem with the user's input: a path, a file, a config value."""


class ModelSourceError(UserError):
    """A base model or image encoder could not be loaded."""


class DatasetError(UserError):
    """An annotation file or one of its records is unusable."""


class ImageError(UserError):
    """An image file that cannot be used; ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f'{path}: {reason}')
        self.path, self.reason = path, reason

    def __reduce__(self):  # crosses DataLoader worker processes
        return ImageError, (self.path, self.reason)


class CheckpointError(UserError):
    """A checkpoint or adapter file is not what the tool needs."""


class TrainingError(UserError):
    """Training cannot go on (e.g. the loss stays non-finite)."""


def run_tool(main: Callable[[], object]) -> None:
    """Run a command-line ``main``; a :class:`UserError` exits 2 with one line."""
    try:
        main()
    except UserError as err:
        print(f'error: {_without_worker_traceback(str(err))}', file=sys.stderr)
        raise SystemExit(2) from None


def _without_worker_traceback(message: str) -> str:
    """A DataLoader worker re-raises our error with its traceback in the
    message; keep the error's own text."""
    if 'Original Traceback' not in message:
        return message
    last = message.rstrip().splitlines()[-1]  # "<module>.DatasetError: text"
    return last.split(': ', 1)[-1]
