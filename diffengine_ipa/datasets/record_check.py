"""Check every record of a dataset before training starts.

A record is usable when it is an object with a non-empty string ``text`` and
an ``image_file`` (both valid Unicode without NUL bytes: a tokenizer or the
file system would fail on them mid-training) inside the image root, symlinks
resolved, that decodes to an image of at least ``min_image_side`` pixels a
side, its ``reference_file`` (optional: one path or a list of them, the
images the image encoder reads instead of the target) likewise, so is its
``input_file`` (optional: the image a FLUX.1 Kontext model edits into the
target), and it is not a duplicate (same image and caption) of an earlier record.
``tools/check_dataset.py`` and the datasets run this check (the field and
path part here, the images in :mod:`.record_index`), so they agree on what
is usable.
"""

import os
import os.path as osp
import re
import reprlib
from dataclasses import dataclass

__all__ = [
    'BadRecord',
    'describe_bad_records',
    'field_problem',
    'reference_files',
    'resolve_path',
    'symlink_problem',
    'problem_kind',
    'count_problems',
    'printable',
]


@dataclass(frozen=True)
class BadRecord:
    """One unusable record: its index, its ``image_file`` and why."""

    index: int
    file: str
    reason: str

    def __str__(self) -> str:
        return f'record {self.index} ({self.file}): {self.reason}'


_SHORT = reprlib.Repr()  # bounded depth and length, even for deep JSON
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def printable(text: str) -> str:
    """``text`` with what no terminal or log can print escaped."""
    return (
        text.encode('utf-8', 'backslashreplace')
        .decode('utf-8')
        .replace('\x00', '\\x00')
    )


def _text_problem(value: str, what: str) -> str | None:
    """Why a string from the annotation file is unusable, if it is."""
    if '\x00' in value:
        return f'{what} contains a NUL byte'
    try:
        value.encode('utf-8')
    except UnicodeEncodeError as err:
        return (
            f'{what} contains an invalid character (a lone surrogate '
            f'{printable(value[err.start])} at position {err.start})'
        )
    return None


def reference_files(record: dict) -> list[str]:
    """The record's ``reference_file`` as a list (empty: none given)."""
    value = record.get('reference_file')
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _reference_problem(record: dict) -> str | None:
    value = record.get('reference_file')
    if value is None:
        return None
    paths = [value] if isinstance(value, str) else value
    if (
        not isinstance(paths, list)
        or not paths
        or not all(isinstance(path, str) and path for path in paths)
    ):
        return (
            '"reference_file" must be a path or a non-empty list of '
            f'paths, got {_SHORT.repr(value)}'
        )
    for path in paths:
        problem = _text_problem(path, '"reference_file"')
        if problem:
            return problem
    return None


def _input_problem(record: dict) -> str | None:
    value = record.get('input_file')
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        return f'"input_file" must be a path, got {_SHORT.repr(value)}'
    return _text_problem(value, '"input_file"')


def field_problem(record: object) -> str | None:
    """Why a record's fields are unusable, if they are (no file is read)."""
    if not isinstance(record, dict):
        return f'not a JSON object ({printable(_SHORT.repr(record))})'
    if 'image_file' not in record or 'text' not in record:
        keys = [printable(str(key)) for key in sorted(record)]
        return f'needs "image_file" and "text" keys, has {keys}'
    path = record['image_file']
    if not isinstance(path, str) or not path:
        return f'"image_file" must be a path, got {_SHORT.repr(path)}'
    problem = _text_problem(path, '"image_file"')
    if problem:
        return problem
    text = record['text']
    if text is None:
        return 'caption ("text") is null'
    if not isinstance(text, str):
        return f'caption ("text") is not a string: {_SHORT.repr(text)}'
    if not text.strip():
        return 'caption ("text") is empty'
    return (
        _text_problem(text, 'caption ("text")')
        or _reference_problem(record)
        or _input_problem(record)
    )


def _within(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_path(file: str, root: str) -> tuple[str, str | None]:
    """``file`` (from a record) as an absolute path under the absolute image
    root ``root``, and why it escapes the root, if it does (``..``)."""
    path = osp.normpath(osp.join(root, file))
    if not _within(path, root):
        return path, f'path escapes the image root {root}'
    return path, None


def symlink_problem(path: str, root: str) -> str | None:
    """Why ``path`` (inside ``root`` as written) leads out of it, if it
    does: a symlink counts where it leads."""
    if not _within(osp.realpath(path), osp.realpath(root)):
        return f'a symlink that leads out of the image root {root}'
    return None


def problem_kind(reason: str) -> str:
    """A reason without its particulars (sizes, record numbers, paths,
    details after a colon), to count problems by kind."""
    for field in ('reference_file', 'input_file'):
        if reason.startswith(field + ' ') and ': ' in reason:
            return f'{field}: ' + problem_kind(reason.split(': ', 1)[1])
    kind = re.sub(r' \([^()]*\)$', '', reason.split(': ')[0])
    kind = kind.split(' of record ')[0]
    if ' the image root' in kind:
        kind = kind[: kind.index(' the image root') + len(' the image root')]
    return kind.rstrip('.')


def count_problems(bad: list[BadRecord]) -> dict[str, int]:
    """How many bad records each kind of problem has, commonest first."""
    counts: dict[str, int] = {}
    for problem in bad:
        kind = problem_kind(problem.reason)
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def describe_bad_records(bad: list[BadRecord], limit: int | None = 20) -> str:
    """One indented line per bad record (the first ``limit``)."""
    shown = bad if limit is None else bad[:limit]
    lines = [f'  {problem}' for problem in shown]
    if len(bad) > len(shown):
        lines.append(f'  ... and {len(bad) - len(shown)} more')
    return '\n'.join(lines)
