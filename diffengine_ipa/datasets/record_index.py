"""The checked records of a dataset, packed so that 10⁶ of them start fast.

A dataset of a million records must not be a million Python dicts in every
DataLoader worker. The index holds them as a few flat numpy arrays (captions
and paths as one UTF-8 buffer each, with offsets), saved in a cache folder
and memory-mapped: every worker, and every rank on the machine, shares the
same pages. A record becomes a dict only when it is fetched.

Each image's verdict (decodes, its upright size, or why not) is kept beside
it, keyed by the file's size, modification time, status-change time and
inode (a file replaced by one of the same size and modification time, as
``cp -p``, ``rsync -t`` or ``tar x`` leave it, has another inode and
status-change time): a later start, or a resume, stats the images but reads
only those that changed. Images are
checked in parallel with a progress bar. The records themselves are parsed
again only when the source changed (its files' stat and a CRC-32 of their
bytes). Several processes opening the same index (ranks of one machine)
take turns through a file lock: one builds, the others read what it wrote.

Layout of ``<cache>/<key>/``: ``meta.json`` (source fingerprint, counts, the
records whose fields are unusable), the record arrays (``text``, ``target``,
``refs``, ``input`` ...) and the image table (``files``, ``size``, ``mtime``,
``ctime``, ``ino``, ``width``, ``height``, ``verdict``). ``meta.json`` holds
the size and CRC-32 of every array: an index with a file cut short,
deleted or edited is rebuilt (with a warning) on the next start.
"""

import hashlib
import json
import logging
import os
import os.path as osp
import shutil
import zlib
from array import array
from typing import Any

import numpy as np
from mmengine.logging import print_log

from ..errors import DatasetError
from .image_checks import EMBEDDED, check_images
from .packed_strings import PackedStrings, StringPacker, load_array
from .record_check import (
    BadRecord,
    field_problem,
    printable,
    reference_files,
    resolve_path,
)
from .record_sources import RecordSource, stat_key

__all__ = ['RecordIndex', 'default_cache_root']

INDEX_VERSION = 4  # 3: the records' face files (FaceID); 4: the input image (``input``)
_STAT = ('size', 'mtime', 'ctime', 'ino')  # an image's stat_key
_TABLE = (*_STAT, 'width', 'height', 'verdict')
_ARRAYS = (
    'text',
    'text_ends',
    'faces',
    'faces_ends',
    'files',
    'files_ends',
    'target',
    'refs',
    'ref_ends',
    'input',
    'record_no',
    'dup_of',
    *_TABLE,
)
_UNCHECKED, _OK = -1, 0  # image verdicts; > 0: 1 + index into reasons


def default_cache_root() -> str:
    """``$DIFFENGINE_IPA_CACHE``, else ``~/.cache/diffengine_ipa``."""
    return os.environ.get('DIFFENGINE_IPA_CACHE') or osp.join(
        osp.expanduser('~'), '.cache', 'diffengine_ipa'
    )


def _locator(value: Any, root: str) -> tuple[str, str | None]:
    """An image of a record as a locator (absolute path, or ``row:`` for
    bytes inside the source) and why its path escapes the root, if it does."""
    if isinstance(value, dict):  # embedded in the source's row
        return f'{EMBEDDED}{value["row"]}:{value["column"]}', None
    return resolve_path(value, root)


FACE_FIELDS = ('face_embedding', 'face_image')  # what tools/prepare_faces.py writes


def _face_files(record: dict, root: str) -> tuple[str, str | None]:
    """A record's face files as ``'<embedding>\\n<crop>'`` (``''`` when it
    has none) and what is wrong with them, if anything."""
    given = {k: record.get(k) for k in FACE_FIELDS if record.get(k) is not None}
    if not given:
        return '', None
    if 'face_embedding' not in given:
        return '', 'face_image without face_embedding'
    paths = []
    for key in FACE_FIELDS:
        value = given.get(key)
        if value is None:
            paths.append('')
            continue
        if not isinstance(value, str) or not value:
            return '', f'{key} must be a path, got {type(value).__name__}'
        path, escape = resolve_path(value, root)
        if escape:
            return '', escape
        paths.append(path)
    return '\n'.join(paths), None


def _as_fields(record: Any, embeds: bool = True) -> Any:
    """The record with embedded-image markers as placeholder paths, for the
    field check (``embeds``: the source stores images in its rows; in other
    sources a dict is only a wrong value)."""
    if not isinstance(record, dict) or not embeds:
        return record
    fields = dict(record)
    for key in ('image_file', 'reference_file', 'input_file'):
        value = fields.get(key)
        if isinstance(value, dict):
            fields[key] = 'embedded'
    return fields


# --- the index -----------------------------------------------------------------


class RecordIndex:
    """The usable records of a source, and why the others are not.

    Open it with :meth:`open`. ``len(index)`` is the number of usable
    records; :meth:`info` gives one as a dict (``img_path``, ``text``,
    ``reference_paths`` when the record names its own references,
    ``input_path`` when it names an input image (``input_file``),
    ``image_size`` (width, height)).
    """

    def __init__(self, folder: str, source: RecordSource, min_image_side: int) -> None:
        self.folder, self.source = folder, source
        self.min_image_side = min_image_side
        self._map()

    # --- opening ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        source: RecordSource,
        min_image_side: int = 1,
        cache_root: str | None = None,
        workers: int | None = None,
        progress: bool = True,
    ) -> 'RecordIndex':
        """The index of ``source``: reused from the cache when the source is
        unchanged, its changed images re-checked; built otherwise."""
        from filelock import FileLock

        root = cache_root or default_cache_root()
        key = hashlib.sha256(
            f'{INDEX_VERSION}\0{osp.abspath(source.name)}\0{source.image_root}'.encode()
        ).hexdigest()[:20]
        folder = osp.join(root, 'dataset_index', key)
        os.makedirs(osp.dirname(folder), exist_ok=True)
        workers = workers or min(8, os.cpu_count() or 1)
        with FileLock(folder + '.lock'):
            fingerprint = source.fingerprint()
            meta, damage = _inspect(folder)
            if damage is not None:
                _remove_damaged(folder, source, damage)
                meta = {}
            if meta.get('fingerprint') != fingerprint:
                _build(folder, source, fingerprint)
            index = cls(folder, source, min_image_side)
            index._refresh_images(workers, progress)
        index._select()
        return index

    def _map(self) -> None:
        folder = self.folder
        self.meta = _read_meta(folder)
        self.text = PackedStrings.load(folder, 'text')
        self.faces = PackedStrings.load(folder, 'faces')
        self.files = PackedStrings.load(folder, 'files')
        for name in ('target', 'refs', 'ref_ends', 'input', 'record_no', 'dup_of'):
            setattr(self, name, load_array(folder, name))
        self.verdicts = {
            name: np.load(osp.join(folder, f'{name}.npy')) for name in _TABLE
        }

    def __getstate__(self) -> dict:  # workers started by spawn re-map
        return dict(
            folder=self.folder,
            source=self.source,
            min_image_side=self.min_image_side,
            usable=self.usable,
        )

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._map()

    # --- images: stat, re-check what changed ----------------------------------

    def _refresh_images(self, workers: int, progress: bool) -> None:
        v = self.verdicts
        now = np.full((len(_STAT), len(self.files)), -1, np.int64)
        embedded = np.zeros(len(self.files), bool)
        for i, locator in enumerate(self.files):
            if locator.startswith(EMBEDDED):  # unchanged with the source
                embedded[i] = True
                continue
            try:
                now[:, i] = stat_key(os.stat(locator))
            except OSError:
                continue
        changed = np.zeros(len(self.files), bool)
        for row, name in enumerate(_STAT):
            changed |= now[row] != v[name]
        stale = (v['verdict'] == _UNCHECKED) | (~embedded & changed)
        if not stale.any():
            return
        reasons = self.meta['reasons']
        todo = [(int(i), self.files[int(i)]) for i in np.flatnonzero(stale)]
        for i, width, height, reason in check_images(
            todo, self.source, workers, progress
        ):
            v['width'][i], v['height'][i] = width, height
            if reason is None:
                v['verdict'][i] = _OK
            else:
                if reason not in reasons:
                    reasons.append(reason)
                v['verdict'][i] = 1 + reasons.index(reason)
        for row, name in enumerate(_STAT):
            v[name][stale] = now[row][stale]
        for name, values in v.items():
            _save_atomic(self.folder, name, values)
        _write_meta(self.folder, self.meta)

    # --- what is usable ---------------------------------------------------------

    def _select(self) -> None:
        """Usable records: fields, paths, images (and their minimum side)
        and references all fine, and not a duplicate."""
        v = self.verdicts
        ok = (v['verdict'] == _OK) & (
            np.minimum(v['width'], v['height']) >= self.min_image_side
        )
        bad_refs = np.concatenate([[0], np.cumsum(~ok[self.refs])])
        starts = np.concatenate([[0], self.ref_ends]).astype(np.int64)[:-1]
        refs_ok = (bad_refs[self.ref_ends] - bad_refs[starts]) == 0
        inputs = np.asarray(self.input)
        input_ok = (inputs < 0) | ok[np.maximum(inputs, 0)]
        usable = ok[self.target] & refs_ok & input_ok & (self.dup_of < 0)
        self.usable = np.flatnonzero(usable)
        self._ok, self._usable_mask = ok, usable

    @property
    def total(self) -> int:
        """How many records the source has."""
        return int(self.meta['total'])

    def bad_records(self) -> list[BadRecord]:
        """Every unusable record with its reason, in source order."""
        bad = [BadRecord(*row) for row in self.meta['field_problems']]
        for r in np.flatnonzero(~self._usable_mask):
            bad.append(
                BadRecord(
                    int(self.record_no[r]),
                    self._shown(int(self.target[r])),
                    self._reason(int(r)),
                )
            )
        return sorted(bad, key=lambda problem: problem.index)

    def _shown(self, file_id: int) -> str:
        locator = self.files[file_id]
        if locator.startswith(EMBEDDED):
            return f'row {locator[len(EMBEDDED) :].split(":")[0]}'
        return printable(osp.relpath(locator, self.source.image_root))

    def _image_reason(self, file_id: int) -> str:
        v = self.verdicts
        code = int(v['verdict'][file_id])
        if code > _OK:
            return self.meta['reasons'][code - 1]
        width, height = int(v['width'][file_id]), int(v['height'][file_id])
        return (
            f'too small ({width}x{height} px; min_image_side is {self.min_image_side})'
        )

    def _reason(self, r: int) -> str:
        if self.dup_of[r] >= 0:
            return f'duplicate of record {int(self.dup_of[r])}'
        target = int(self.target[r])
        if not self._ok[target]:
            return self._image_reason(target)
        start = int(self.ref_ends[r - 1]) if r else 0
        for file_id in self.refs[start : int(self.ref_ends[r])]:
            if not self._ok[file_id]:
                return (
                    f'reference_file {self._shown(int(file_id))}: '
                    f'{self._image_reason(int(file_id))}'
                )
        file_id = int(self.input[r])
        if file_id >= 0 and not self._ok[file_id]:
            return f'input_file {self._shown(file_id)}: {self._image_reason(file_id)}'
        return 'unusable'

    # --- records ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.usable)

    def info(self, i: int) -> dict:
        """The ``i``-th usable record as a dict."""
        r = int(self.usable[i])
        target = int(self.target[r])
        info = dict(
            img_path=self.files[target],
            text=self.text[r],
            image_size=(
                int(self.verdicts['width'][target]),
                int(self.verdicts['height'][target]),
            ),
        )
        start = int(self.ref_ends[r - 1]) if r else 0
        refs = self.refs[start : int(self.ref_ends[r])]
        if len(refs):
            info['reference_paths'] = [self.files[int(j)] for j in refs]
        faces = self.faces[r]
        if faces:  # FaceID: the face embedding (.npy) and the aligned crop
            embedding, crop = faces.split('\n')
            info['face_embedding_path'] = embedding
            if crop:
                info['face_image_path'] = crop
        if self.input[r] >= 0:
            info['input_path'] = self.files[int(self.input[r])]
        return info

    def without_input(self) -> list[int]:
        """The usable records (indices into them) that name no input image."""
        return np.flatnonzero(np.asarray(self.input)[self.usable] < 0).tolist()

    def record_number(self, i: int) -> int:
        """Where the ``i``-th usable record is in the source (0-based)."""
        return int(self.record_no[int(self.usable[i])])

    def image_sizes(self) -> np.ndarray:
        """(N, 2) width and height of every usable record's target image."""
        target = np.asarray(self.target)[self.usable]
        return np.stack(
            [self.verdicts['width'][target], self.verdicts['height'][target]], axis=1
        )

    @staticmethod
    def is_embedded(locator: str) -> bool:
        """Whether an ``img_path`` names bytes inside the source."""
        return locator.startswith(EMBEDDED)

    def embedded_bytes(self, locator: str) -> tuple[str, bytes]:
        """The name (for messages) and bytes of an embedded image."""
        row, column = locator[len(EMBEDDED) :].split(':')
        return (
            f'{self.source.name}[row {row}]',
            self.source.image_bytes(int(row), column),
        )


# --- building from the source -------------------------------------------------


def _shown_file(record: Any) -> str:
    """A record's ``image_file`` as an error line shows it."""
    file = record.get('image_file', '-') if isinstance(record, dict) else '-'
    if isinstance(file, dict) and 'row' in file:
        return f'row {file["row"]}'
    return file if isinstance(file, str) else repr(file)[:60]


def _read_meta(folder: str) -> dict:
    try:
        with open(osp.join(folder, 'meta.json')) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return {}
    return meta if meta.get('version') == INDEX_VERSION else {}


def _crc(path: str) -> int:
    crc = 0
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            crc = zlib.crc32(block, crc)
    return crc


def _checksums(folder: str) -> dict[str, list[int]]:
    """Size and CRC-32 of every array of an index folder."""
    return {
        name: [osp.getsize(path), _crc(path)]
        for name in _ARRAYS
        for path in [osp.join(folder, f'{name}.npy')]
    }


_META_FIELDS = ('fingerprint', 'total', 'reasons', 'field_problems', 'checksums')


def _inspect(folder: str) -> tuple[dict, str | None]:
    """An index folder's meta, and what is damaged in it (``None``: intact
    or absent). A folder of another index version is replaced quietly."""
    if not osp.isdir(folder):
        return {}, None
    path = osp.join(folder, 'meta.json')
    try:
        with open(path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        return {}, 'meta.json is missing'
    except (OSError, ValueError) as err:
        return {}, f'meta.json is damaged ({type(err).__name__}: {err})'
    if not isinstance(meta, dict):
        return {}, 'meta.json is damaged (not an object)'
    if meta.get('version') != INDEX_VERSION:
        return {}, ''
    missing = [field for field in _META_FIELDS if field not in meta]
    if missing:
        return {}, f'meta.json lacks {missing[0]!r}'
    known = meta['checksums']
    for name in _ARRAYS:
        file = osp.join(folder, f'{name}.npy')
        if not isinstance(known, dict) or name not in known:
            return {}, f'meta.json has no checksum of {name}.npy'
        try:
            size = osp.getsize(file)
        except OSError:
            return {}, f'{name}.npy is missing'
        if size != known[name][0]:
            return {}, (f'{name}.npy has {size} bytes, {known[name][0]} were written')
        if _crc(file) != known[name][1]:
            return {}, f'{name}.npy was changed after it was written'
    verdicts = np.load(osp.join(folder, 'verdict.npy'))
    if len(verdicts) and int(verdicts.max()) > len(meta['reasons']):
        return {}, 'meta.json lacks reasons its verdicts name'
    return meta, None


def _remove_damaged(folder: str, source: RecordSource, damage: str) -> None:
    """Delete a damaged (or outdated: ``damage`` empty) index folder, with a
    warning; one line naming it when it cannot be deleted."""
    if damage:
        print_log(
            f'{source.name}: the record index {folder} is damaged ({damage}); '
            'rebuilding it (every image is checked again)',
            logger='current',
            level=logging.WARNING,
        )
    try:
        shutil.rmtree(folder)
    except OSError as err:
        raise DatasetError(
            f'{source.name}: the record index {folder} is '
            f'{"damaged (" + damage + ")" if damage else "outdated"} and could '
            f'not be removed ({err.strerror}); delete that folder'
        ) from None


def _write_meta(folder: str, meta: dict) -> None:
    meta['checksums'] = _checksums(folder)
    tmp = osp.join(folder, f'.meta.json.tmp-{os.getpid()}')
    with open(tmp, 'w') as f:
        json.dump(meta, f)
    os.replace(tmp, osp.join(folder, 'meta.json'))


def _save_atomic(folder: str, name: str, values: np.ndarray) -> None:
    tmp = osp.join(folder, f'.{name}.tmp-{os.getpid()}.npy')
    np.save(tmp, values)
    os.replace(tmp, osp.join(folder, f'{name}.npy'))


def _build(folder: str, source: RecordSource, fingerprint: str) -> None:
    """Parse the source's records into the index arrays; image verdicts of
    an earlier index of this source are kept for unchanged files."""
    root = source.image_root
    old = {}
    if osp.isfile(osp.join(folder, 'files.npy')):  # earlier verdicts
        files = PackedStrings.load(folder, 'files')
        arrays = {n: np.load(osp.join(folder, f'{n}.npy')) for n in _TABLE}
        reasons = _read_meta(folder).get('reasons', [])
        old = {
            path: tuple(int(arrays[n][i]) for n in arrays)
            for i, path in enumerate(files)
            if not path.startswith(EMBEDDED)
        }
    else:
        reasons = []
    embeds = type(source).image_bytes is not RecordSource.image_bytes
    file_ids: dict[str, int] = {}
    texts, target, refs, ref_ends = (StringPacker(), array('q'), array('q'), array('q'))
    faces = StringPacker()
    inputs = array('q')
    record_no, keys, field_problems, total = array('q'), array('q'), [], 0
    for number, (record, problem) in enumerate(source):
        total += 1
        shown = _shown_file(record)
        problem = problem or field_problem(_as_fields(record, embeds))
        locators = []
        if problem is None:
            given = record.get('input_file')
            for value in [
                record['image_file'],
                *reference_files(record),
                *([given] if given is not None else []),
            ]:
                locator, escape = _locator(value, root)
                problem = problem or escape
                locators.append(locator)
            face_files, face_problem = _face_files(record, root)
            problem = problem or face_problem
        if problem is not None:
            field_problems.append((number, printable(shown), problem))
            continue
        ids = [file_ids.setdefault(loc, len(file_ids)) for loc in locators]
        texts.append(record['text'])  # packed as it comes
        faces.append(face_files)
        target.append(ids[0])
        inputs.append(ids.pop() if record.get('input_file') is not None else -1)
        refs.extend(ids[1:])
        ref_ends.append(len(refs))
        record_no.append(number)
        keys.append(hash((locators[0], record['text'])))
    if total == 0:
        raise DatasetError(f'{source.name}: no records')
    dup_of = np.full(len(keys), -1, np.int64)
    if keys:
        _, first, inverse = np.unique(
            np.frombuffer(keys, np.int64), return_index=True, return_inverse=True
        )
        firsts = first[inverse]
        repeated = firsts != np.arange(len(keys))
        dup_of[repeated] = np.frombuffer(record_no, np.int64)[firsts[repeated]]
    del keys

    tmp = folder + f'.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    texts.packed().save(tmp, 'text')
    faces.packed().save(tmp, 'faces')
    del texts, faces
    locators = list(file_ids)
    PackedStrings.pack(locators).save(tmp, 'files')
    table = {
        n: np.full(len(locators), -1, dtype)
        for n, dtype in (
            ('size', np.int64),
            ('mtime', np.int64),
            ('ctime', np.int64),
            ('ino', np.int64),
            ('width', np.int32),
            ('height', np.int32),
            ('verdict', np.int32),
        )
    }
    for i, locator in enumerate(locators):  # unchanged files keep verdicts
        known = old.get(locator)
        if known is not None:
            for name, value in zip(table, known, strict=True):
                table[name][i] = value
    for name, values in table.items():
        np.save(osp.join(tmp, f'{name}.npy'), values)
    for name, values in (
        ('target', target),
        ('refs', refs),
        ('ref_ends', ref_ends),
        ('input', inputs),
        ('record_no', record_no),
    ):
        np.save(
            osp.join(tmp, f'{name}.npy'),
            np.frombuffer(values, np.int64) if len(values) else np.zeros(0, np.int64),
        )
    np.save(osp.join(tmp, 'dup_of.npy'), dup_of)
    _write_meta(
        tmp,
        dict(
            version=INDEX_VERSION,
            fingerprint=fingerprint,
            source=source.name,
            total=total,
            reasons=reasons,
            field_problems=field_problems,
        ),
    )
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
