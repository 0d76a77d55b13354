"""Image–caption records from a ``data.json`` annotation file."""
import json
import logging
import os.path as osp

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..errors import DatasetError
from ..registry import DATASETS
from .embedding_cache import EmbeddingCache
from .record_check import check_records, describe_bad_records
from .transforms.geometric import fill_resolution

__all__ = ['IPAdapterDataset', 'read_records']


def read_records(ann_file: str) -> list:
    """Parse a JSON list (or JSON Lines) of records; one-line errors."""
    try:
        with open(ann_file, encoding='utf-8-sig') as f:
            text = f.read()
    except OSError as err:
        raise DatasetError(
            f'{ann_file}: cannot read the annotation file ({err.strerror})'
        ) from None
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        lines = [line for line in text.splitlines() if line.strip()]
        try:  # JSON Lines: one object per line
            records = [json.loads(line) for line in lines]
        except json.JSONDecodeError:
            raise DatasetError(f'{ann_file}: not valid JSON or JSON Lines '
                               f'({err.msg} at line {err.lineno}, column '
                               f'{err.colno})') from None
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

    def prepare_data(self, idx: int) -> dict | None:
        """The sample through the pipeline, or from the embedding cache.

        In skip mode a record that fails now (its file changed since the
        check) gives ``None``, and MMEngine's dataset fetches another.
        """
        try:
            if self.embedding_cache is None:
                return super().prepare_data(idx)
            return self.embedding_cache.load(self.get_data_info(idx))
        except DatasetError as err:
            if self.on_bad_record == 'strict':
                raise
            print_log(f'skipped a record that failed during training: {err}',
                      logger='current', level=logging.WARNING)
            return None
