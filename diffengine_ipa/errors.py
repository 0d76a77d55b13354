"""Errors whose message tells the user what to fix, printed as one line."""
import sys
from typing import Callable

__all__ = ['UserError', 'ModelSourceError', 'DatasetError', 'CheckpointError',
           'run_tool']


class UserError(Exception):
    """A problem with the user's input: a path, a file, a config value."""


class ModelSourceError(UserError):
    """A base model or image encoder could not be loaded."""


class DatasetError(UserError):
    """An annotation file or one of its records is unusable."""


class CheckpointError(UserError):
    """A checkpoint or adapter file is not what the tool needs."""


def run_tool(main: Callable[[], object]) -> None:
    """Run a command-line ``main``; a :class:`UserError` exits 2 with one line."""
    try:
        main()
    except UserError as err:
        print(f'error: {err}', file=sys.stderr)
        raise SystemExit(2) from None
