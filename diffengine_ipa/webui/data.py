"""The Data tab: a dataset folder in the workspace with the kit's annotation
file, ``data.json`` (a JSON list of ``{"image_file", "text"}`` records,
image paths relative to the folder), checked per image by the kit's record
check (what ``tools/check_dataset.py`` and ``IPAdapterDataset`` run).

A row of the caption table is ``[image_file, text, verdict]``. A FaceID
training reads the records with their faces, ``<folder>_faces.jsonl`` beside
the folder (what ``tools/prepare_faces.py`` writes for it).
"""

import json
import os
import os.path as osp
import shutil

from ..cli import IMAGE_EXTENSIONS
from ..datasets.record_check import describe_bad_records
from ..errors import DatasetError, UserError
from ..fileio import atomic_write_bytes
from .workspace import Workspace, safe_upload_name

__all__ = [
    'ANNOTATION_FILE',
    'HEADERS',
    'IMAGE_EXTENSIONS',
    'dataset_rows',
    'add_images',
    'scan_folder',
    'save_rows',
    'annotation_file',
    'index_cache',
    'check_annotation_file',
    'check_dataset',
    'faces_file',
    'prepare_faces',
]

ANNOTATION_FILE = 'data.json'
HEADERS = ['image_file', 'text', 'check']
MIN_IMAGE_SIDE = 64  # IPAdapterDataset's default


def annotation_file(ws: Workspace, folder: str) -> str:
    """``<folder>/data.json`` of a dataset folder in the workspace."""
    return osp.join(ws.resolve(folder), ANNOTATION_FILE)


def index_cache(ws: Workspace) -> str:
    """The workspace's folder of record indexes and image verdicts (the
    dataset's ``index_cache``: the page writes nothing outside)."""
    return osp.join(ws.root, '.cache')


def check_annotation_file(ws: Workspace, path: str):
    """The record check of ``IPAdapterDataset`` on an annotation file:
    ``(number of records, [BadRecord, ...])``."""
    from ..datasets.record_index import RecordIndex
    from ..datasets.record_sources import open_source

    index = RecordIndex.open(
        open_source(path), MIN_IMAGE_SIDE, index_cache(ws), workers=1, progress=False
    )
    return index.total, index.bad_records()


def check_dataset(ws: Workspace, folder: str) -> str:
    """The dataset's annotation file, if every record is usable (the check
    that training runs first, run here so the page says it at once)."""
    path = annotation_file(ws, folder)
    if not osp.isfile(path):
        raise DatasetError(
            f'{folder}: no {osp.basename(path)} yet (add images in the Data tab)'
        )
    total, bad = check_annotation_file(ws, path)
    if not total or bad:
        raise DatasetError(
            f'{folder}: {len(bad)} of {total} records are '
            'unusable:\n' + describe_bad_records(bad)
        )
    return path


def faces_file(ws: Workspace, folder: str) -> str:
    """``<folder>_faces.jsonl``: the dataset's records with their faces
    (beside the folder, so that a scan of it never finds the face crops)."""
    return ws.resolve(folder).rstrip(os.sep) + '_faces.jsonl'


def prepare_faces(ws: Workspace, folder: str, embedder: str = '') -> str:
    """Detect, align and embed the face of each image of the dataset into
    :func:`faces_file` (what ``tools/prepare_faces.py`` does; unchanged
    images are reused): one summary line, and the records left out."""
    from ..datasets.record_sources import open_source
    from ..faces import get_face_embedder
    from ..faces.face_preparation import prepare_faces as prepare
    from ..faces.face_preparation import summary_line

    summary = prepare(
        open_source(check_dataset(ws, folder)),
        faces_file(ws, folder),
        get_face_embedder(dict(type=embedder) if embedder else None),
    )
    lines = [f'faces: {summary_line(folder, summary)}']
    if summary['skipped']:
        lines.append(describe_bad_records(summary['skipped']))
    return '\n'.join(lines)


def _read(ws: Workspace, folder: str) -> list[dict]:
    path = annotation_file(ws, folder)
    if not osp.isfile(path):
        return []
    from ..datasets import read_records

    return read_records(path)


def _write(ws: Workspace, folder: str, records: list[dict]) -> None:
    text = (
        '[\n'
        + ',\n'.join(f'  {json.dumps(r, ensure_ascii=False)}' for r in records)
        + '\n]\n'
    )
    atomic_write_bytes(annotation_file(ws, folder), text.encode())


def _rows(ws: Workspace, folder: str, records: list[dict]) -> list[list[str]]:
    """Rows with each record's verdict: ``ok`` or the check's reason (of
    the records as written to the folder's annotation file)."""
    bad = check_annotation_file(ws, annotation_file(ws, folder))[1] if records else []
    reasons = {problem.index: problem.reason for problem in bad}
    return [
        [
            str(r.get('image_file', '')) if isinstance(r, dict) else '',
            str(r.get('text') or '') if isinstance(r, dict) else '',
            reasons.get(i, 'ok'),
        ]
        for i, r in enumerate(records)
    ]


def dataset_rows(ws: Workspace, folder: str) -> list[list[str]]:
    """The dataset's rows (none when it has no ``data.json`` yet)."""
    return _rows(ws, folder, _read(ws, folder))


def _caption_beside(path: str) -> str:
    """The caption in ``<stem>.txt`` beside an image (kohya's sidecar
    convention), else ''."""
    sidecar = osp.splitext(path)[0] + '.txt'
    if osp.isfile(sidecar):
        with open(sidecar, encoding='utf-8', errors='replace') as f:
            return ' '.join(f.read().split())
    return ''


def _unique(folder: str, name: str) -> str:
    stem, ext = osp.splitext(name)
    candidate, n = name, 1
    while osp.exists(osp.join(folder, candidate)):
        candidate, n = f'{stem}_{n}{ext}', n + 1
    return candidate


def add_images(
    ws: Workspace, folder: str, files: list[str], caption: str = ''
) -> list[list[str]]:
    """Copy uploaded images into ``<folder>/images/`` and add a record for
    each; its caption is ``caption``, else that of a ``.txt`` uploaded with
    the same stem (or beside it).

    Args:
        ws: The workspace.
        folder: The dataset folder (created when missing).
        files: Paths of the uploaded files (inside the workspace: the page
            keeps Gradio's upload folder there).
        caption: The caption for these images ('' = from ``.txt`` files).
    """
    root = ws.folder(ws.relative(folder))
    images_dir = ws.folder(ws.relative(osp.join(root, 'images')))
    sources = [ws.resolve(f, must_exist=True) for f in files or []]
    captions = {
        osp.splitext(osp.basename(p))[0]: _caption_beside(p)
        for p in sources
        if p.lower().endswith('.txt')
    }
    records = _read(ws, folder)
    for source in sources:
        if not source.lower().endswith(IMAGE_EXTENSIONS):
            continue
        stem = osp.splitext(osp.basename(source))[0]
        text = (caption or '').strip() or captions.get(stem) or _caption_beside(source)
        name = _unique(images_dir, safe_upload_name(osp.basename(source)))
        shutil.copyfile(source, osp.join(images_dir, name))
        records.append({'image_file': f'images/{name}', 'text': text})
    _write(ws, folder, records)
    return _rows(ws, folder, records)


def scan_folder(ws: Workspace, folder: str) -> list[list[str]]:
    """Add a record for every image under ``folder`` that has none yet
    (caption from a ``.txt`` beside it, else empty), and write the file: the
    images and captions are what the kit's caption-folder reader
    (``FolderRecords``) finds there."""
    root = ws.resolve(folder, must_exist=True)
    if not osp.isdir(root):
        raise UserError(f'{folder}: not a folder')
    from ..datasets.record_sources import FolderRecords

    records = _read(ws, folder)
    known = {r.get('image_file') for r in records if isinstance(r, dict)}
    for record, _ in FolderRecords(root):  # the caption folder reader
        rel = record['image_file'].replace(os.sep, '/')
        if rel not in known:
            text = ' '.join(str(record.get('text') or '').split())
            records.append({'image_file': rel, 'text': text})
    _write(ws, folder, records)
    return _rows(ws, folder, records)


def save_rows(ws: Workspace, folder: str, rows: list[list]) -> list[list[str]]:
    """Write the table back as the annotation file (rows with an empty
    ``image_file`` are dropped); the rows with fresh verdicts."""
    ws.folder(ws.relative(folder))
    records = [
        {'image_file': str(row[0]).strip(), 'text': str(row[1] or '')}
        for row in rows or []
        if len(row) > 1 and str(row[0]).strip()
    ]
    _write(ws, folder, records)
    return _rows(ws, folder, records)
