"""Image–caption records from a ``data.json`` annotation file."""
import json
import os.path as osp

from mmengine.dataset import BaseDataset

from ..errors import DatasetError
from ..registry import DATASETS
from .embedding_cache import EmbeddingCache

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
    the folder of the annotation file.

    Args:
        ann_file: The annotation file (JSON list or JSON Lines), relative to
            ``data_root`` if that is set.
        data_root: Folder that image paths (and ``ann_file``) are relative to.
        pipeline: Transforms applied to each sample.
        embedding_cache: A folder written by ``tools/cache_embeddings.py``:
            samples then come from it (the frozen encoders' outputs) instead
            of the images; see :mod:`.embedding_cache`.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str | None = None,
                 pipeline: tuple = (),
                 embedding_cache: str | None = None,
                 **kwargs) -> None:
        self._images_relative_to_ann = not data_root
        self.pipeline_cfg = list(pipeline)
        self.embedding_cache = (EmbeddingCache(embedding_cache)
                                if embedding_cache else None)
        super().__init__(
            ann_file=ann_file,
            data_root=data_root or '',
            pipeline=list(pipeline),
            **kwargs)

    def load_data_list(self) -> list[dict]:
        """Read and check every record before training starts."""
        records = read_records(self.ann_file)
        image_root = (
            osp.dirname(self.ann_file)
            if self._images_relative_to_ann else self.data_root)
        data_list = []
        for index, record in enumerate(records):
            where = f'{self.ann_file}: record {index}'
            if not isinstance(record, dict) or not {'image_file', 'text'
                                                    } <= set(record):
                raise DatasetError(f'{where}: needs "image_file" and "text" '
                                   f'keys, got {record!r:.80}')
            if not isinstance(record['text'], str):
                raise DatasetError(f'{where}: "text" must be a string, got '
                                   f'{record["text"]!r:.80}')
            img_path = osp.join(image_root, str(record['image_file']))
            if not osp.isfile(img_path):
                raise DatasetError(f'{where}: image file not found: '
                                   f'{img_path}')
            data_list.append(dict(record, img_path=img_path))
        if not data_list:
            raise DatasetError(f'{self.ann_file}: no records')
        if self.embedding_cache is not None:
            self.embedding_cache.check(data_list, self.pipeline_cfg,
                                       self.ann_file)
        return data_list

    def prepare_data(self, idx: int) -> dict:
        """The sample through the pipeline, or from the embedding cache."""
        if self.embedding_cache is None:
            return super().prepare_data(idx)
        return self.embedding_cache.load(self.get_data_info(idx))
