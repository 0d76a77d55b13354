"""Check every record of an annotation file before training starts.

A record is usable when it is an object with a non-empty string ``text`` and
an ``image_file`` inside the image root that decodes to an image of at least
``min_image_side`` pixels a side, and it is not a duplicate (same image and
caption) of an earlier record.
"""
import os
import os.path as osp
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


def _field_problem(record: object) -> str | None:
    if not isinstance(record, dict):
        return f'not a JSON object ({record!r:.60})'
    if 'image_file' not in record or 'text' not in record:
        return f'needs "image_file" and "text" keys, has {sorted(record)}'
    if not isinstance(record['image_file'], str) or not record['image_file']:
        return f'"image_file" must be a path, got {record["image_file"]!r:.60}'
    text = record['text']
    if text is None:
        return 'caption ("text") is null'
    if not isinstance(text, str):
        return f'caption ("text") is not a string: {text!r:.60}'
    if not text.strip():
        return 'caption ("text") is empty'
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
            if not img_path.startswith(root + os.sep):
                reason = f'path escapes the image root {root}'
            elif key in seen:
                reason = f'duplicate of record {seen[key]}'
            else:
                try:
                    check_image(img_path, min_image_side)
                except ImageError as err:
                    reason = err.reason
        if reason is None:
            seen[key] = index
            good.append(dict(record, img_path=img_path))
        else:
            bad.append(BadRecord(index, str(file), reason))
    return good, bad


def describe_bad_records(bad: list[BadRecord], limit: int | None = 20) -> str:
    """One indented line per bad record (the first ``limit``)."""
    shown = bad if limit is None else bad[:limit]
    lines = [f'  {problem}' for problem in shown]
    if len(bad) > len(shown):
        lines.append(f'  ... and {len(bad) - len(shown)} more')
    return '\n'.join(lines)
