"""Face data for the FaceID adapters, prepared once before training.

For each record, the face of its conditioning image (``reference_file``
when it has one, else ``image_file``) is detected, aligned and embedded;
the record is written to a new annotation file with all its fields plus

* ``face_embedding``: a ``.npy`` of float32, shape (512,) (the embedder's
  ``embedding_dim``), unit length;
* ``face_image``: the aligned 224 × 224 crop, a PNG (RGB);

both paths relative to the new file's folder, as its image paths are.
A record whose image has no face, several faces where one is wanted, or
cannot be read is left out and named. Outputs are reused on a rerun while
the image (size, times, inode, checksum) and the embedder's config are
unchanged; every file is written atomically.
"""

import hashlib
import json
import os
import os.path as osp
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..datasets.record_check import BadRecord, count_problems
from ..datasets.record_sources import RecordSource, content_crc, stat_key
from ..errors import DatasetError, ImageError
from ..fileio import atomic_path, atomic_write_bytes, safe_file_name
from ..image_io import read_rgb_image
from .face_embedder import FaceEmbedder, largest_face

__all__ = ['prepare_faces', 'output_paths', 'summary_line']

MANIFEST = 'manifest.json'  # in the files folder: what was found, for reruns
_SAVE_EVERY = 256  # images detected between saves of the manifest


def output_paths(out_file: str) -> tuple[str, str]:
    """The annotation file and the folder of its embeddings and crops
    (``faces.jsonl`` → ``faces_files/``)."""
    out_file = osp.abspath(out_file)
    return out_file, osp.splitext(out_file)[0] + '_files'


def _load_manifest(folder: str) -> dict:
    try:
        with open(osp.join(folder, MANIFEST), encoding='utf-8') as f:
            manifest = json.load(f)
        return manifest if isinstance(manifest, dict) else {}
    except (OSError, ValueError):
        return {}  # none yet, or damaged: everything is detected again


def _save_manifest(folder: str, config: str, images: dict) -> None:
    manifest = dict(embedder=config, images=images)
    atomic_write_bytes(
        osp.join(folder, MANIFEST), json.dumps(manifest, indent=1).encode()
    )


def _save_npy(path: str, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        np.save(f, array)


def _save_png(path: str, image: Any) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format='PNG')


def _record_path(value: str, image_root: str, out_dir: str) -> str:
    """An image path of the source as the new file must write it."""
    if osp.isabs(value):
        return value
    return osp.relpath(osp.join(image_root, value), out_dir)


def prepare_faces(
    source: RecordSource,
    out_file: str,
    embedder: FaceEmbedder,
    largest: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Detect, align and embed the faces of ``source``'s records; write the
    kept records to ``out_file`` (``.json``: a list, else JSON Lines).

    Args:
        source: The records (any source the kit reads).
        out_file: The new annotation file.
        embedder: Finds and embeds faces.
        largest: With several faces, keep the largest (default: leave the
            record out).
        progress: Called with 1 after each record.

    Returns:
        ``records``, ``kept``, ``reused`` (outputs of an earlier run),
        ``skipped`` (:class:`BadRecord` list), ``counts`` (skips by kind),
        ``out_file``, ``folder`` and ``seconds``.
    """
    start = time.perf_counter()
    out_file, folder = output_paths(out_file)
    out_dir = osp.dirname(out_file)
    os.makedirs(folder, exist_ok=True)
    old = _load_manifest(folder)
    config = json.dumps(embedder.config, sort_keys=True)
    if old.get('embedder') != config:
        old = {}  # another embedder: nothing of it is reused
    seen: dict[str, dict] = {}
    kept, skipped, reused = [], [], 0
    for index, (record, problem) in enumerate(source, start=1):
        if progress is not None:
            progress(1)
        if not isinstance(record, dict):
            skipped.append(BadRecord(index, '?', 'not a JSON object'))
            continue
        field = 'reference_file' if record.get('reference_file') else 'image_file'
        value = record.get(field)
        name = value if isinstance(value, str) else '?'
        if problem:
            skipped.append(BadRecord(index, name, problem))
            continue
        if isinstance(value, dict):
            skipped.append(
                BadRecord(
                    index,
                    f'row {value.get("row")}',
                    'the image is stored inside the dataset; prepare_faces '
                    'reads image files (export them, or use a path column)',
                )
            )
            continue
        if isinstance(value, list):
            skipped.append(
                BadRecord(
                    index,
                    str(record.get('image_file')),
                    'several references (reference_file is a list): FaceID reads '
                    'one face a record; give one reference, or one record per '
                    'reference',
                )
            )
            continue
        if not isinstance(value, str) or not value:
            skipped.append(BadRecord(index, name, f'no {field}'))
            continue
        path = osp.normpath(osp.join(source.image_root, value))
        entry, was_reused = _faces_of(path, old, seen, folder, embedder, largest)
        reused += was_reused
        if len(seen) % _SAVE_EVERY == 0 and not was_reused:  # a kill loses less
            _save_manifest(folder, config, {**old.get('images', {}), **seen})
        if entry.get('problem'):
            skipped.append(BadRecord(index, value, entry['problem']))
            continue
        out = dict(record)
        for key in ('image_file', 'reference_file'):
            if isinstance(out.get(key), str):
                out[key] = _record_path(out[key], source.image_root, out_dir)
        out['face_embedding'] = osp.relpath(osp.join(folder, entry['npy']), out_dir)
        out['face_image'] = osp.relpath(osp.join(folder, entry['png']), out_dir)
        kept.append(out)
    _save_manifest(folder, config, seen)
    if not kept:
        counts = ', '.join(f'{k}: {n}' for k, n in count_problems(skipped).items())
        raise DatasetError(
            f'{source.name}: no record has a usable face ({len(skipped)} '
            f'skipped: {counts or "no records"})'
        )
    if out_file.endswith('.json'):
        text = json.dumps(kept, indent=1, ensure_ascii=False) + '\n'
    else:
        text = ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in kept)
    atomic_write_bytes(out_file, text.encode('utf-8'))
    return dict(
        records=len(kept) + len(skipped),
        kept=len(kept),
        reused=reused,
        skipped=skipped,
        counts=count_problems(skipped),
        out_file=out_file,
        folder=folder,
        seconds=time.perf_counter() - start,
    )


def summary_line(name: str, summary: dict[str, Any]) -> str:
    """One line of what :func:`prepare_faces` did with dataset ``name``."""
    counts = ', '.join(f'{kind}: {n}' for kind, n in summary['counts'].items())
    return (
        f'{name}: {summary["records"]} records, {summary["kept"]} kept, '
        f'{len(summary["skipped"])} left out'
        + (f' ({counts})' if counts else '')
        + f'; {summary["reused"]} images reused from an earlier run, '
        f'{summary["seconds"]:.1f} s'
    )


def _faces_of(
    path: str,
    old: dict,
    seen: dict,
    folder: str,
    embedder: FaceEmbedder,
    largest: bool,
) -> tuple[dict, bool]:
    """The manifest entry of one image: reused when its file is unchanged
    and its outputs are there, else detected now. Also whether it came from
    an earlier run."""
    if path in seen:  # an image several records share: found this run
        return _verdict(seen[path], largest), False
    try:
        key = [*stat_key(os.stat(path)), content_crc(path)]
    except OSError:
        key = None
    entry = old.get('images', {}).get(path)
    if (
        key is not None
        and entry is not None
        and entry.get('key') == key
        and (
            'npy' not in entry
            or all(osp.isfile(osp.join(folder, entry[k])) for k in ('npy', 'png'))
        )
        and (entry['faces'] <= 1 or not largest or 'npy' in entry)
    ):
        seen[path] = entry
        return _verdict(entry, largest), True
    entry = dict(key=key)
    try:
        faces = embedder.faces(read_rgb_image(path))
    except ImageError as err:
        entry.update(faces=0, error=err.reason)
        seen[path] = entry
        return _verdict(entry, largest), False
    entry['faces'] = len(faces)
    face = largest_face(faces)
    if face is not None and (len(faces) == 1 or largest):
        embedding = np.asarray(face.embedding, dtype=np.float32)
        if embedding.shape != (embedder.embedding_dim,):
            raise DatasetError(
                f'{path}: the face embedder gave an embedding of shape '
                f'{embedding.shape}; it declares ({embedder.embedding_dim},)'
            )
        digest = hashlib.sha256(path.encode()).hexdigest()[:10]
        stem = safe_file_name(osp.splitext(osp.basename(path))[0], 60) + '_' + digest
        entry.update(npy=stem + '.npy', png=stem + '.png', bbox=list(face.bbox))
        _save_npy(osp.join(folder, entry['npy']), embedding)
        _save_png(osp.join(folder, entry['png']), face.crop)
    seen[path] = entry
    return _verdict(entry, largest), False


def _verdict(entry: dict, largest: bool) -> dict:
    """``entry`` with ``problem`` set when its record is left out."""
    if entry.get('error'):
        return dict(entry, problem=entry['error'])
    if entry['faces'] == 0:
        return dict(entry, problem='no face found')
    if entry['faces'] > 1 and not largest:
        return dict(
            entry,
            problem=f'several faces: {entry["faces"]} found, one is wanted '
            '(--largest keeps the largest)',
        )
    return entry
