"""Image–caption records from a ``data.json`` annotation file."""
import codecs
import json
import logging
import os.path as osp

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..errors import DatasetError
from ..registry import DATASETS
from ..sample_generators import DrawKey, sample_generator
from .embedding_cache import EmbeddingCache
from .record_check import check_records, describe_bad_records
from .transforms.geometric import fill_resolution

__all__ = ['IPAdapterDataset', 'read_records', 'decode_annotations']


_BOMS = ((codecs.BOM_UTF32_LE, 'utf-32'), (codecs.BOM_UTF32_BE, 'utf-32'),
         (codecs.BOM_UTF8, 'utf-8-sig'), (codecs.BOM_UTF16_LE, 'utf-16'),
         (codecs.BOM_UTF16_BE, 'utf-16'))


def decode_annotations(raw: bytes, ann_file: str) -> str:
    """The text of an annotation file in any encoding an editor writes:
    UTF-8 with or without a BOM, UTF-16 or UTF-32 with a BOM, UTF-16
    without one; anything else is one line naming the first bad byte."""
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)),
                    None)
    if encoding is None and len(raw) >= 2 and b'\x00' in raw[:200]:
        head = raw[:200]  # ASCII text in UTF-16 has a NUL every other byte
        if head[1::2].count(0) > len(head) // 4:
            encoding = 'utf-16-le'
        elif head[0::2].count(0) > len(head) // 4:
            encoding = 'utf-16-be'
    try:
        return raw.decode(encoding or 'utf-8')
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b'\n') + 1
        raise DatasetError(
            f'{ann_file}: not {encoding or "UTF-8"} text (byte '
            f'0x{raw[err.start]:02x} at line {line} cannot be decoded); save '
            'it as UTF-8') from None


def read_records(ann_file: str) -> list:
    """Parse a JSON list (or JSON Lines) of records; one-line errors."""
    try:
        with open(ann_file, 'rb') as f:
            raw = f.read()
    except OSError as err:
        raise DatasetError(
            f'{ann_file}: cannot read the annotation file ({err.strerror})'
        ) from None
    text = decode_annotations(raw, ann_file)
    try:
        records = json.loads(text)
    except RecursionError:
        raise DatasetError(f'{ann_file}: JSON nested too deeply to be '
                           'records') from None
    except json.JSONDecodeError as err:
        lines = [line for line in text.splitlines() if line.strip()]
        try:  # JSON Lines: one object per line
            records = [json.loads(line) for line in lines]
        except (json.JSONDecodeError, RecursionError):
            raise DatasetError(f'{ann_file}: not valid JSON or JSON Lines '
                               f'({err.msg} at line {err.lineno}, column '
                               f'{err.colno})') from None
    if isinstance(records, dict) and {'image_file', 'text'} & set(records):
        records = [records]  # JSON Lines of one record, or one JSON object
    if not isinstance(records, list):
        raise DatasetError(
            f'{ann_file}: expected a JSON list of {{"image_file", "text"}} '
            f'records, got a JSON {type(records).__name__}')
    return records


@DATASETS.register_module()
class IPAdapterDataset(BaseDataset):
    """A list of ``{"image_file": "images/x.jpg", "text": "a caption"}``.

    Image paths are relative to ``data_root`` when it is given, otherwise to
    the folder of the annotation file. Every record is checked before
    training starts (see :mod:`.record_check`); ``python
    tools/check_dataset.py DATA_JSON`` runs the same check alone.

    Args:
        ann_file: The annotation file (JSON list or JSON Lines), relative to
            ``data_root`` if that is set.
        data_root: Folder that image paths (and ``ann_file``) are relative to.
        pipeline: Transforms applied to each sample.
        resolution: The training resolution: the size of every resize and
            crop in ``pipeline`` that gives none (one knob for a config).
        embedding_cache: A folder written by ``tools/cache_embeddings.py``:
            samples then come from it (the frozen encoders' outputs) instead
            of the images; see :mod:`.embedding_cache`.
        on_bad_record: ``'strict'`` stops with the list of unusable records;
            ``'skip'`` trains without them (logged), and also replaces a
            sample whose image becomes unreadable during training.
        min_image_side: Images with a shorter side are unusable.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str | None = None,
                 pipeline: tuple = (),
                 resolution: int | None = None,
                 embedding_cache: str | None = None,
                 on_bad_record: str = 'strict',
                 min_image_side: int = 64,
                 **kwargs) -> None:
        if on_bad_record not in ('strict', 'skip'):
            raise DatasetError(f'on_bad_record={on_bad_record!r}: use '
                               "'strict' or 'skip'")
        self.on_bad_record = on_bad_record
        self.min_image_side = min_image_side
        self._images_relative_to_ann = not data_root
        self.resolution = resolution
        self.pipeline_cfg = fill_resolution(pipeline, resolution)
        self.embedding_cache = (EmbeddingCache(embedding_cache)
                                if embedding_cache else None)
        self.draw_key = DrawKey()
        super().__init__(
            ann_file=ann_file,
            data_root=data_root or '',
            pipeline=list(self.pipeline_cfg),
            **kwargs)

    def load_data_list(self) -> list[dict]:
        """Read and check every record before training starts."""
        records = read_records(self.ann_file)
        if not records:
            raise DatasetError(f'{self.ann_file}: no records')
        image_root = (
            osp.dirname(self.ann_file)
            if self._images_relative_to_ann else self.data_root)
        data_list, bad = check_records(records, image_root,
                                       self.min_image_side)
        if bad and (self.on_bad_record == 'strict' or not data_list):
            raise DatasetError(
                f'{self.ann_file}: {len(bad)} of {len(records)} records are '
                'unusable; fix or remove them'
                + ('' if data_list else ' (none is usable)')
                + ', or set on_bad_record="skip" on the dataset to train '
                'without them:\n' + describe_bad_records(bad))
        if bad:
            print_log(
                f'{self.ann_file}: skipped {len(bad)} of {len(records)} '
                f'unusable records (on_bad_record="skip"):\n'
                + describe_bad_records(bad, limit=None),
                logger='current', level=logging.WARNING)
        if self.embedding_cache is not None:
            self.embedding_cache.check(data_list, self.pipeline_cfg,
                                       self.ann_file)
        return data_list

    def set_draw_epoch(self, seed: int, epoch: int) -> None:
        """Key the samples' random transforms by the run's seed and this
        epoch (``RandomStateHook`` calls it before each training epoch; the
        DataLoader workers, persistent ones included, see it)."""
        self.draw_key.set(seed, epoch)

    def prepare_data(self, idx: int) -> dict | None:
        """The sample through the pipeline, or from the embedding cache.

        The pipeline's random transforms draw from ``generator``, the
        sample's own (seed, epoch, sample index). In skip mode a record that
        fails now (its file changed since the check) gives ``None``, and
        MMEngine's dataset fetches another.
        """
        try:
            info = self.get_data_info(idx)
            if self.embedding_cache is not None:
                return self.embedding_cache.load(info)
            seed, epoch = self.draw_key.get()
            info['generator'] = sample_generator(
                seed, epoch, info['sample_idx'], stream='data')
            return self.pipeline(info)
        except DatasetError as err:
            if self.on_bad_record == 'strict':
                raise
            print_log(f'skipped a record that failed during training: {err}',
                      logger='current', level=logging.WARNING)
            return None
