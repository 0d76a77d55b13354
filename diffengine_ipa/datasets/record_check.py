"""Check every record of an annotation file before training starts.

A record is usable when it is an object with a non-empty string ``text`` and
an ``image_file`` (both valid Unicode without NUL bytes: a tokenizer or the
file system would fail on them mid-training) inside the image root, symlinks
resolved, that decodes to an image of at least ``min_image_side`` pixels a
side, and it is not a duplicate (same image and caption) of an earlier
record. ``tools/check_dataset.py`` and ``IPAdapterDataset`` both run this
check, so they agree on what is usable.
"""
import os
import os.path as osp
import reprlib
from dataclasses import dataclass

from ..errors import ImageError
from ..image_io import check_image

__all__ = ['BadRecord', 'check_records', 'describe_bad_records']


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
    return text.encode('utf-8', 'backslashreplace').decode('utf-8').replace(
        '\x00', '\\x00')


def _text_problem(value: str, what: str) -> str | None:
    """Why a string from the annotation file is unusable, if it is."""
    if '\x00' in value:
        return f'{what} contains a NUL byte'
    try:
        value.encode('utf-8')
    except UnicodeEncodeError as err:
        return (f'{what} contains an invalid character (a lone surrogate '
                f'{printable(value[err.start])} at position {err.start})')
    return None


def _field_problem(record: object) -> str | None:
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
    return _text_problem(text, 'caption ("text")')


def _within(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


def _escapes(img_path: str, root: str) -> str | None:
    """Why ``img_path`` is outside the image root ``root`` (both absolute),
    if it is; a symlink counts where it leads."""
    if not _within(img_path, root):
        return f'path escapes the image root {root}'
    if not _within(osp.realpath(img_path), osp.realpath(root)):
        return f'a symlink that leads out of the image root {root}'
    return None


def check_records(records: list, image_root: str, min_image_side: int = 1
                  ) -> tuple[list[dict], list[BadRecord]]:
    """Split ``records`` into usable ones (each with its absolute
    ``img_path``) and :class:`BadRecord` s, in file order."""
    root = osp.abspath(image_root)
    good, bad, seen = [], [], {}
    for index, record in enumerate(records):
        file = record.get('image_file', '-') if isinstance(record, dict) else '-'
        reason = _field_problem(record)
        if reason is None:
            img_path = osp.normpath(osp.join(root, record['image_file']))
            key = (img_path, record['text'])
            reason = _escapes(img_path, root)
            if reason is None and key in seen:
                reason = f'duplicate of record {seen[key]}'
            elif reason is None:
                try:
                    check_image(img_path, min_image_side)
                except ImageError as err:
                    reason = err.reason
        if reason is None:
            seen[key] = index
            good.append(dict(record, img_path=img_path))
        else:
            bad.append(BadRecord(index, printable(_SHORT.repr(file) if not
                                                  isinstance(file, str) else
                                                  file), reason))
    return good, bad


def describe_bad_records(bad: list[BadRecord], limit: int | None = 20) -> str:
    """One indented line per bad record (the first ``limit``)."""
    shown = bad if limit is None else bad[:limit]
    lines = [f'  {problem}' for problem in shown]
    if len(bad) > len(shown):
        lines.append(f'  ... and {len(bad) - len(shown)} more')
    return '\n'.join(lines)
