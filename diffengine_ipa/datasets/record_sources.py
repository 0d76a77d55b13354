"""Records from the formats users already have, one record at a time.

Every format gives the same records, ``{"image_file", "text",
"reference_file"?}`` (or, for images stored inside a dataset, the row that
holds them), which then go through the same checks (:mod:`.record_check`,
:mod:`.record_index`):

* a JSON list or JSON Lines file (``data.json``, ``data.jsonl``), parsed as
  a stream: no list of a million dicts is ever built;
* a folder of images with same-named ``.txt`` captions (``cat.jpg`` +
  ``cat.txt``, the layout of kohya-style trainers), searched recursively;
* a Hugging Face ``datasets`` dataset saved with ``save_to_disk``, or
  ``.parquet`` / ``.arrow`` files, with configurable image, text and
  reference columns (an image column holds embedded bytes or paths).

WebDataset shards are read as a stream instead (:mod:`.ip_adapter_web_dataset`).
"""

import codecs
import glob
import hashlib
import json
import os
import os.path as osp
import re
import zlib
from collections.abc import Iterator
from typing import Any

from ..cli import IMAGE_EXTENSIONS
from ..errors import DatasetError

__all__ = [
    'RecordSource',
    'JsonRecords',
    'FolderRecords',
    'ArrowRecords',
    'open_source',
    'read_records',
    'iter_json_records',
    'decode_annotations',
    'stat_key',
    'content_crc',
]

# A source yields (record, problem): ``problem`` is set when the source
# itself could not make a record (an image without its caption file).
Item = tuple[Any, str | None]

_BOMS = (
    (codecs.BOM_UTF32_LE, 'utf-32'),
    (codecs.BOM_UTF32_BE, 'utf-32'),
    (codecs.BOM_UTF8, 'utf-8-sig'),
    (codecs.BOM_UTF16_LE, 'utf-16'),
    (codecs.BOM_UTF16_BE, 'utf-16'),
)


def decode_annotations(raw: bytes, ann_file: str) -> str:
    """The text of an annotation file in any encoding an editor writes:
    UTF-8 with or without a BOM, UTF-16 or UTF-32 with a BOM, UTF-16
    without one; anything else is one line naming the first bad byte."""
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), None)
    if encoding is None and len(raw) >= 2 and b'\x00' in raw[:200]:
        head = raw[:200]  # ASCII text in UTF-16 has a NUL every other byte
        if head[1::2].count(0) > len(head) // 4:
            encoding = 'utf-16-le'
        elif head[0::2].count(0) > len(head) // 4:
            encoding = 'utf-16-be'
    try:
        return raw.decode(encoding or 'utf-8')
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b'\n') + 1
        raise DatasetError(
            f'{ann_file}: not {encoding or "UTF-8"} text (byte '
            f'0x{raw[err.start]:02x} at line {line} cannot be decoded); save '
            'it as UTF-8'
        ) from None


def stat_key(stat: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is written or replaced: its size,
    modification time, status-change time and inode. ``cp -p``,
    ``rsync -t`` and ``tar x`` keep the modification time of a replaced
    file; its status-change time and inode they cannot keep."""
    ino = stat.st_ino & ((1 << 63) - 1)  # fits an int64
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, ino


_WHOLE = 256 << 20  # files up to this size are checksummed whole
_SAMPLES = 64  # blocks of a larger file that are


def content_crc(path: str) -> int:
    """CRC-32 of a file's bytes (≈ 4 GB/s): all of them up to 256 MiB, else
    its first and last MiB and 64 blocks of 64 KiB spread between."""
    crc = 0
    with open(path, 'rb') as f:
        size = os.fstat(f.fileno()).st_size
        if size <= _WHOLE:
            for block in iter(lambda: f.read(_CHUNK), b''):
                crc = zlib.crc32(block, crc)
            return crc
        step = (size - (2 << 20)) // _SAMPLES
        spots = [(0, 1 << 20)]
        spots += [((1 << 20) + i * step, 64 << 10) for i in range(_SAMPLES)]
        spots.append((size - (1 << 20), 1 << 20))
        for offset, length in spots:
            f.seek(offset)
            crc = zlib.crc32(f.read(length), crc)
    return crc


def _stat_key(*paths: str, content: bool = True) -> str:
    """A digest of the paths with their :func:`stat_key` and (``content``)
    :func:`content_crc`: a file replaced by another of the same size and
    modification time changes it."""
    digest = hashlib.sha256()
    for path in paths:
        key = stat_key(os.stat(path))
        crc = content_crc(path) if content else 0
        digest.update(f'{path}\0{key}\0{crc}\0'.encode())
    return digest.hexdigest()


class RecordSource:
    """Where records come from.

    Attributes:
        name: The source as the user named it (for messages).
        image_root: Folder that relative image paths are relative to.
    """

    name: str
    image_root: str

    def fingerprint(self) -> str:
        """Changes whenever the records may have changed."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Item]:
        raise NotImplementedError

    def image_bytes(self, row: int, column: str) -> bytes:
        """An image stored inside the source (only sources with rows)."""
        raise NotImplementedError


_WHITESPACE = ' \t\r\n'


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _bad_json(ann_file: str, err: json.JSONDecodeError) -> DatasetError:
    return DatasetError(
        f'{ann_file}: not valid JSON or JSON Lines ({err.msg} '
        f'at line {err.lineno}, column {err.colno})'
    )


class _KeyGivenTwice(Exception):
    """A JSON object names a key twice (``json`` would keep the last)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    found = dict(pairs)
    if len(found) < len(pairs):
        seen = set()
        raise _KeyGivenTwice(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return found


def iter_json_records(ann_file: str) -> Iterator[Any]:
    """The records of a JSON list, a JSON Lines file or a single JSON
    object, one at a time; one-line errors naming the file, and the record
    or line where a key is given twice."""
    where = ['record 1']
    try:
        yield from _json_records(ann_file, where)
    except _KeyGivenTwice as err:
        raise DatasetError(
            f'{ann_file}: {where[0]}: "{err.args[0]}" is given '
            'twice; keep the one you mean'
        ) from None


_CHUNK = 1 << 20  # bytes read at a time
_SPACE = re.compile(r'[ \t\r\n]*')


class _TextStream:
    """An annotation file's text, decoded a chunk at a time: ``text`` holds
    what is read and not yet dropped, ``eof`` whether the file is done."""

    def __init__(self, f: Any, encoding: str) -> None:
        self.f, self.text, self.eof = f, '', False
        self.decoder = codecs.getincrementaldecoder(encoding)()

    def more(self) -> bool:
        """Read the next chunk (``False`` at the end of the file)."""
        if self.eof:
            return False
        raw = self.f.read(_CHUNK)
        self.eof = not raw
        self.text += self.decoder.decode(raw, final=self.eof)
        return True

    def skip(self, pos: int) -> int:
        """``pos`` past whitespace, reading on while the text is only that."""
        pos = _SPACE.match(self.text, pos).end()
        while pos == len(self.text) and self.more():
            pos = _SPACE.match(self.text, pos).end()
        return pos

    def value(self, decoder: json.JSONDecoder, pos: int) -> tuple[Any, int]:
        """The JSON value at ``pos``, reading on while it is incomplete
        (the error of a bad value is raised at the end of the file)."""
        while True:
            try:
                value, end = decoder.raw_decode(self.text, pos)
                if end < len(self.text) or self.eof:  # not a number cut short
                    return value, end
            except json.JSONDecodeError:
                if self.eof:
                    raise
            target = len(self.text) + max(_CHUNK, len(self.text) - pos)
            while len(self.text) < target and self.more():
                pass

    def drop(self, pos: int) -> int:
        """Forget the text before ``pos``; the new position of ``pos``."""
        if pos > _CHUNK:
            self.text = self.text[pos:]
            return 0
        return pos


def _encoding_of(head: bytes) -> str:
    """The encoding of an annotation file from its first bytes (as
    :func:`decode_annotations` decides it)."""
    encoding = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    if encoding is None and len(head) >= 2 and b'\x00' in head[:200]:
        head = head[:200]
        if head[1::2].count(0) > len(head) // 4:
            encoding = 'utf-16-le'
        elif head[0::2].count(0) > len(head) // 4:
            encoding = 'utf-16-be'
    return encoding or 'utf-8'


class _Fallback(Exception):
    """The stream met something the whole-file reader words better."""


def _json_records(ann_file: str, where: list[str]) -> Iterator[Any]:
    """The records read as a stream: memory holds a chunk and one record,
    whatever the number of records. Errors are worded by the whole-file
    reader (the same messages, line numbers of the file)."""
    yielded = 0
    try:
        try:
            f = open(ann_file, 'rb')
        except OSError as err:
            raise DatasetError(
                f'{ann_file}: cannot read the annotation file ({err.strerror})'
            ) from None
        with f:
            stream = _TextStream(f, _encoding_of(f.read(4096)))
            f.seek(0)
            for record in _streamed(stream, where):
                yielded += 1
                yield record
        return
    except (_Fallback, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        pass
    for number, record in enumerate(_whole_file_records(ann_file, where)):
        if number >= yielded:  # what the stream could not give
            yield record


def _streamed(stream: _TextStream, where: list[str]) -> Iterator[Any]:
    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys)
    stream.more()
    if stream.text.startswith('\ufeff'):  # utf-8 BOM read as utf-8
        stream.text = stream.text[1:]
    pos = stream.skip(0)
    text = stream.text
    if text.startswith('[', pos):  # a JSON list, element by element
        pos = stream.skip(pos + 1)
        if stream.text.startswith(']', pos):
            if stream.skip(pos + 1) < len(stream.text):
                raise _Fallback
            return
        count = 0
        while True:
            count += 1
            where[0] = f'record {count}'
            record, pos = stream.value(decoder, pos)
            yield record
            pos = stream.skip(stream.drop(pos))
            if stream.text.startswith(',', pos):
                pos = stream.skip(pos + 1)
            elif stream.text.startswith(']', pos):
                if stream.skip(pos + 1) < len(stream.text):
                    raise _Fallback  # extra data after the list
                return
            else:
                raise _Fallback
    if pos >= len(text):
        raise _Fallback  # an empty file
    line = stream.text.count('\n', 0, pos) + 1
    where[0] = f'line {line}'
    first, end = stream.value(decoder, pos)
    if stream.skip(end) >= len(stream.text):  # one JSON value
        raise _Fallback
    if not isinstance(first, dict):
        raise _Fallback
    # JSON Lines, one record a line, from the first value's line on (lines
    # split as str.splitlines splits them)
    stream.text = stream.text[pos:]
    while True:
        lines = stream.text.splitlines(keepends=True)
        if not stream.eof and lines:  # the last line may go on
            stream.text = lines.pop()
        else:
            stream.text = ''
        for text_line in lines:
            if text_line.strip():
                yield _json_line(decoder, text_line, line, stream.f.name, where)
            line += 1
        if stream.eof:
            return
        stream.more()


def _json_line(
    decoder: json.JSONDecoder, line: str, number: int, ann_file: str, where: list[str]
) -> Any:
    """The record of JSON Lines line ``number``; one line naming it if it is
    not JSON."""
    where[0] = f'line {number}'
    try:
        return decoder.decode(line)
    except json.JSONDecodeError as err:
        raise DatasetError(
            f'{ann_file}: not valid JSON or JSON Lines ({err.msg} '
            f'at line {number}, column {err.colno})'
        ) from None


def _whole_file_records(ann_file: str, where: list[str]) -> Iterator[Any]:
    """The records of the whole file read at once: the reference semantics
    of :func:`_json_records`, which falls back to it for exact error
    messages and for what it does not stream."""
    try:
        with open(ann_file, 'rb') as f:
            raw = f.read()
    except OSError as err:
        raise DatasetError(
            f'{ann_file}: cannot read the annotation file ({err.strerror})'
        ) from None
    text = decode_annotations(raw, ann_file)
    del raw
    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys)
    pos = _skip(text, 0)
    try:
        if text.startswith('[', pos):  # a JSON list, element by element
            pos = _skip(text, pos + 1)
            if text.startswith(']', pos):
                pos = len(text)
            count = 0
            while pos < len(text):
                count += 1
                where[0] = f'record {count}'
                record, pos = decoder.raw_decode(text, pos)
                yield record
                pos = _skip(text, pos)
                if text.startswith(',', pos):
                    pos = _skip(text, pos + 1)
                elif text.startswith(']', pos):
                    if _skip(text, pos + 1) < len(text):
                        raise json.JSONDecodeError('Extra data', text, pos + 1)
                    break
                else:
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            return
        if pos >= len(text):
            raise json.JSONDecodeError('Expecting value', text, pos)
        where[0] = f'line {text.count(chr(10), 0, pos) + 1}'
        first, end = decoder.raw_decode(text, pos)
        if _skip(text, end) >= len(text):  # one JSON value
            if isinstance(first, dict) and {'image_file', 'text'} & set(first):
                yield first
                return
            raise DatasetError(
                f'{ann_file}: expected a JSON list of {{"image_file", "text"}} '
                f'records, got a JSON {type(first).__name__}'
            )
        if not isinstance(first, dict):
            raise json.JSONDecodeError('Extra data', text, end)
        lines = iter(text[pos:].splitlines())  # JSON Lines: one per line
        offset = text.count('\n', 0, pos)
        for number, line in enumerate(lines, offset + 1):
            if line.strip():
                yield _json_line(decoder, line, number, ann_file, where)
    except RecursionError:
        raise DatasetError(
            f'{ann_file}: JSON nested too deeply to be records'
        ) from None
    except json.JSONDecodeError as err:
        raise _bad_json(ann_file, err) from None


def read_records(ann_file: str) -> list:
    """All records of a JSON list or JSON Lines file (small files)."""
    return list(iter_json_records(ann_file))


class JsonRecords(RecordSource):
    """A JSON list or JSON Lines annotation file.

    Args:
        ann_file: The file.
        image_root: Folder its image paths are relative to (default: the
            file's folder).
    """

    def __init__(self, ann_file: str, image_root: str | None = None) -> None:
        self.name = ann_file
        self.image_root = osp.abspath(image_root or osp.dirname(ann_file))

    def fingerprint(self) -> str:
        try:
            return _stat_key(osp.abspath(self.name))
        except OSError as err:
            raise DatasetError(
                f'{self.name}: cannot read the annotation file ({err.strerror})'
            ) from None

    def __iter__(self) -> Iterator[Item]:
        for record in iter_json_records(self.name):
            yield record, None


class FolderRecords(RecordSource):
    """A folder of images with same-named ``.txt`` captions (recursively).

    Args:
        folder: The folder; image paths are relative to it.
    """

    def __init__(self, folder: str) -> None:
        self.name = folder
        self.image_root = osp.abspath(folder)

    def _images(self) -> list[str]:
        found = []
        for parent, dirs, files in os.walk(self.image_root):
            dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
            found.extend(
                osp.join(parent, name)
                for name in files
                if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith('.')
            )
        return sorted(found)

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.image_root.encode())
        for image in self._images():
            caption = osp.splitext(image)[0] + '.txt'
            key = stat_key(os.stat(caption)) if osp.isfile(caption) else None
            digest.update(f'{image}\0{key}\0'.encode())
        return digest.hexdigest()

    def __iter__(self) -> Iterator[Item]:
        for image in self._images():
            file = osp.relpath(image, self.image_root)
            caption = osp.splitext(image)[0] + '.txt'
            try:
                with open(caption, 'rb') as f:
                    text = decode_annotations(f.read(), caption).strip()
            except FileNotFoundError:
                yield (
                    {'image_file': file},
                    (f'no caption file {osp.basename(caption)} beside it'),
                )
                continue
            except DatasetError as err:
                yield {'image_file': file}, str(err).split(': ', 1)[-1]
                continue
            yield {'image_file': file, 'text': text}, None


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            'reading a Hugging Face dataset, .parquet or .arrow '
            'files needs the datasets package: pip install '
            'datasets'
        ) from None
    datasets.disable_progress_bars()
    return datasets


class ArrowRecords(RecordSource):
    """A Hugging Face ``datasets`` dataset: a folder written by
    ``save_to_disk``, or ``.parquet`` / ``.arrow`` files (a glob, or a folder
    of them).

    Args:
        path: The folder or file(s).
        image_column: The column of the target images: an ``Image``
            feature (embedded bytes or paths), a path string or bytes.
        text_column: The column of the captions.
        reference_column: The column of the references (same kinds as the
            image column), if the records have their own.
        split: The split of a ``DatasetDict`` folder.
        image_root: Folder that image paths in the columns are relative to
            (default: the dataset's folder).
        cache_dir: Where ``.parquet`` files are converted to Arrow.
    """

    def __init__(
        self,
        path: str,
        image_column: str = 'image',
        text_column: str = 'text',
        reference_column: str | None = None,
        split: str = 'train',
        image_root: str | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.name = path
        self.columns = dict(
            image=image_column, text=text_column, reference=reference_column
        )
        self.split = split
        self.cache_dir = cache_dir
        self.files = self._files()
        self.image_root = osp.abspath(
            image_root or (path if osp.isdir(path) else osp.dirname(self.files[0]))
        )
        self._dataset = None

    def _files(self) -> list[str]:
        path = self.name
        if osp.isdir(path):
            found = sorted(
                glob.glob(osp.join(path, '**', '*.arrow'), recursive=True)
                + glob.glob(osp.join(path, '**', '*.parquet'), recursive=True)
            )
        else:
            found = sorted(glob.glob(path))
        found = [
            osp.abspath(f) for f in found if not osp.basename(f).startswith('cache-')
        ]
        if not found:
            raise DatasetError(f'{path}: no .arrow or .parquet files')
        return found

    def fingerprint(self) -> str:
        return _stat_key(*self.files) + json.dumps(self.columns) + self.split

    @property
    def dataset(self) -> Any:
        """The dataset, memory-mapped (opened once per process)."""
        if self._dataset is None:
            self._dataset = self._open()
        return self._dataset

    def _open(self) -> Any:
        datasets = _import_datasets()
        path = self.name
        if osp.isdir(path) and (
            osp.isfile(osp.join(path, 'state.json'))
            or osp.isfile(osp.join(path, 'dataset_dict.json'))
        ):
            data = _load_from_disk(datasets, path)
            if isinstance(data, datasets.DatasetDict):
                if self.split not in data:
                    raise DatasetError(
                        f'{path}: no split {self.split!r} (has {sorted(data)})'
                    )
                data = data[self.split]
        elif all(f.endswith('.parquet') for f in self.files):
            data = datasets.Dataset.from_parquet(self.files, cache_dir=self.cache_dir)
        else:
            data = datasets.concatenate_datasets(
                [datasets.Dataset.from_file(f) for f in self.files]
            )
        missing = [
            c
            for c in self.columns.values()
            if c is not None and c not in data.column_names
        ]
        if missing:
            raise DatasetError(
                f'{path}: no column {missing[0]!r} (columns: '
                f'{data.column_names}); set image_column, '
                'text_column or reference_column'
            )
        for column in (self.columns['image'], self.columns['reference']):
            if column and type(data.features[column]).__name__ == 'Image':
                data = data.cast_column(column, datasets.Image(decode=False))
        return data

    def __len__(self) -> int:
        return len(self.dataset)

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _dataset=None)  # reopened where needed

    @staticmethod
    def _image(value: Any, row: int, field: str) -> Any:
        """A cell as a record's path, or a marker of embedded bytes."""
        if isinstance(value, dict):  # an Image feature, not decoded
            data = value.get('bytes')
            if data or (data is not None and not value.get('path')):
                return dict(row=row, column=field)  # empty bytes: named as such
            value = value.get('path')
        if isinstance(value, (bytes, bytearray)):
            return dict(row=row, column=field)
        return value

    def __iter__(self) -> Iterator[Item]:
        columns = [c for c in self.columns.values() if c]
        data = self.dataset.select_columns(columns)
        row = 0
        for batch in data.iter(batch_size=1000):
            for i in range(len(batch[self.columns['text']])):
                record = dict(text=batch[self.columns['text']][i])
                record['image_file'] = self._image(
                    batch[self.columns['image']][i], row, 'image'
                )
                if self.columns['reference']:
                    reference = self._image(
                        batch[self.columns['reference']][i], row, 'reference'
                    )
                    if reference is not None:
                        record['reference_file'] = reference
                yield record, None
                row += 1

    def image_bytes(self, row: int, column: str) -> bytes:
        value = self.dataset[row][self.columns[column]]
        return value['bytes'] if isinstance(value, dict) else bytes(value)


# The JSON files of a ``save_to_disk`` folder, read by ``load_from_disk``.
_DISK_FILES = ('state.json', 'dataset_info.json', 'dataset_dict.json')


def _load_from_disk(datasets: Any, path: str) -> Any:
    """``datasets.load_from_disk``; a damaged JSON file of the folder named
    in one line."""
    for name in _DISK_FILES:
        file = osp.join(path, name)
        if not osp.isfile(file):
            continue
        try:
            with open(file, encoding='utf-8') as f:
                json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DatasetError(
                f'{path}: {name} is damaged ({err}); save the dataset again '
                '(Dataset.save_to_disk) or restore that file'
            ) from None
    try:
        return datasets.load_from_disk(path)
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetError(
            f'{path}: not a readable save_to_disk folder '
            f'({type(err).__name__}: {err}); save the dataset '
            'again (Dataset.save_to_disk)'
        ) from None


def open_source(
    ann_file: str, image_root: str | None = None, **columns: Any
) -> RecordSource:
    """The source that reads ``ann_file``: a JSON or JSON Lines file, a
    folder of images and captions, a Hugging Face dataset folder, or
    ``.parquet`` / ``.arrow`` files."""
    if osp.isdir(ann_file):
        arrow = glob.glob(
            osp.join(ann_file, '**', '*.arrow'), recursive=True
        ) or glob.glob(osp.join(ann_file, '*.parquet'))
        if arrow or osp.isfile(osp.join(ann_file, 'dataset_dict.json')):
            return ArrowRecords(ann_file, image_root=image_root, **columns)
        return FolderRecords(ann_file)
    if ann_file.endswith(('.parquet', '.arrow')):
        return ArrowRecords(ann_file, image_root=image_root, **columns)
    return JsonRecords(ann_file, image_root)
