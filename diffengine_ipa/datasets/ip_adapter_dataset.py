"""Image–caption records from a file or folder the user already has."""

import logging
import os.path as osp

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..errors import DatasetError
from ..registry import DATASETS
from ..sample_generators import DrawKey, sample_generator
from .aspect_buckets import AspectRatioBuckets
from .embedding_cache import EmbeddingCache
from .held_out_split import held_out_split
from .record_check import count_problems, describe_bad_records
from .record_index import RecordIndex, default_cache_root
from .record_sources import decode_annotations, open_source, read_records
from .transforms.geometric import fill_resolution

__all__ = ['IPAdapterDataset', 'read_records', 'decode_annotations', 'draw_reference']


def needs_input_image(pipeline: list) -> bool:
    """Whether a training pipeline packs the input image
    (``input_pixel_values`` in ``PackInputs``' input keys)."""
    return any(
        isinstance(t, dict)
        and t.get('type') == 'PackInputs'
        and 'input_pixel_values' in t.get('input_keys', ())
        for t in pipeline
    )


def draw_reference(paths: list[str], seed: int, epoch: int, sample_idx: int) -> str:
    """The reference a sample shows the image encoder this epoch: one of
    its ``paths``, drawn from the sample's own generator (run seed, epoch,
    sample index; a stream of its own, so the crop and flip draws stay)."""
    if len(paths) == 1:
        return paths[0]
    generator = sample_generator(seed, epoch, sample_idx, stream='reference')
    return paths[int(torch.randint(len(paths), (), generator=generator))]


def cached_reference_index(info: dict, seed: int, epoch: int) -> int:
    """Which of a record's cached references a sample reads this epoch:
    the one :func:`draw_reference` draws uncached."""
    paths = info.get('reference_paths') or []
    if len(paths) < 2:
        return 0
    return draw_reference(list(range(len(paths))), seed, epoch, info['sample_idx'])


@DATASETS.register_module()
class IPAdapterDataset(BaseDataset):
    """Records ``{"image_file", "text", "reference_file"?, "input_file"?}``
    from any source.

    ``ann_file`` is a JSON list or JSON Lines file, a folder of images with
    same-named ``.txt`` captions, a Hugging Face dataset folder
    (``save_to_disk``) or ``.parquet`` / ``.arrow`` files (see
    :mod:`.record_sources`). ``reference_file`` (a path or a list) names the
    image(s) the image encoder reads; without it the target is its own
    reference. ``input_file`` names the image a FLUX.1 Kontext model edits
    into the target (read by pipelines that pack ``input_pixel_values``;
    there every record needs one). Image paths are relative to
    ``data_root`` when it is given, otherwise to the annotation file's
    folder (or the folder itself).

    Every record is checked before training starts (:mod:`.record_check`),
    images in parallel; the verdicts are cached, keyed by each file's size
    and modification time, and the records are held packed and
    memory-mapped (:mod:`.record_index`), so 10⁶ records start in seconds
    and every DataLoader worker shares them. ``python
    tools/check_dataset.py ANN_FILE`` runs the same check alone.

    Args:
        ann_file: The records (see above), relative to ``data_root`` if that
            is set.
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
        buckets: Aspect-ratio buckets around ``resolution``², e.g.
            ``dict(step=64, max_aspect=2.0)`` (see
            :class:`.AspectRatioBuckets`; a ``resolution`` of its own wins):
            each sample gets its ``bucket`` (height, width) for
            ``ResizeCropToBucket``, and ``BucketBatchSampler`` batches
            them one bucket at a time.
        image_column: Column of the target images (datasets, parquet).
        text_column: Column of the captions.
        reference_column: Column of the references, if any.
        index_cache: Folder of the record index and image verdicts
            (default ``$DIFFENGINE_IPA_CACHE`` or ``~/.cache/diffengine_ipa``).
        check_workers: Processes that check images (default: up to 8).
        val_split: Hold out this fraction of the usable records (a fixed
            draw, the same on every run) for validation; 0 keeps them all.
        split: With ``val_split``: ``'train'`` (the rest) or ``'val'`` (the
            held-out records).
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(
        self,
        ann_file: str,
        data_root: str | None = None,
        pipeline: tuple = (),
        resolution: int | None = None,
        embedding_cache: str | None = None,
        on_bad_record: str = 'strict',
        min_image_side: int = 64,
        buckets: dict | None = None,
        image_column: str = 'image',
        text_column: str = 'text',
        reference_column: str | None = None,
        index_cache: str | None = None,
        check_workers: int | None = None,
        val_split: float = 0.0,
        split: str = 'train',
        **kwargs,
    ) -> None:
        if on_bad_record not in ('strict', 'skip'):
            raise DatasetError(
                f"on_bad_record={on_bad_record!r}: use 'strict' or 'skip'"
            )
        self.on_bad_record = on_bad_record
        self.min_image_side = min_image_side
        self._images_relative_to_ann = not data_root
        self.resolution = resolution
        self.columns = dict(
            image_column=image_column,
            text_column=text_column,
            reference_column=reference_column,
        )
        self.index_cache, self.check_workers = index_cache, check_workers
        self.val_split, self.split = val_split, split
        self.buckets = (
            AspectRatioBuckets(**dict(dict(resolution=resolution), **buckets))
            if buckets
            else None
        )
        self.pipeline_cfg = fill_resolution(pipeline, resolution)
        self.embedding_cache = (
            EmbeddingCache(embedding_cache) if embedding_cache else None
        )
        self.draw_key = DrawKey()
        super().__init__(
            ann_file=ann_file,
            data_root=data_root or '',
            pipeline=list(self.pipeline_cfg),
            serialize_data=False,
            **kwargs,
        )

    def full_init(self) -> None:
        """Open (or build) the record index; stop or log on bad records."""
        if self._fully_initialized:
            return
        if not osp.exists(self.ann_file):
            raise DatasetError(
                f'{self.ann_file}: cannot read the annotation '
                'file (No such file or directory)'
            )
        image_root = None if self._images_relative_to_ann else self.data_root
        columns = (
            self.columns
            if osp.isdir(self.ann_file)
            or (self.ann_file.endswith(('.parquet', '.arrow')))
            else {}
        )
        source = open_source(self.ann_file, image_root, **columns)
        if hasattr(source, 'cache_dir'):  # parquet converted to Arrow there
            source.cache_dir = osp.join(
                self.index_cache or default_cache_root(), 'arrow'
            )
        self.index = RecordIndex.open(
            source, self.min_image_side, self.index_cache, self.check_workers
        )
        self._report_bad_records()
        self._check_input_images()
        if self.val_split:
            self.index.usable = held_out_split(
                self.index.usable, self.val_split, self.split, self.ann_file
            )
        if self._indices is not None:  # BaseDataset's ``indices``: a subset
            keep = self._indices
            if isinstance(keep, int):
                keep = slice(None, keep) if keep >= 0 else slice(keep, None)
            self.index.usable = np.asarray(self.index.usable)[keep]
        self.bucket_ids = (
            self.buckets.assign(self.index.image_sizes()) if self.buckets else None
        )
        self._cache_files = None
        if self.embedding_cache is not None:
            if len(self.index) and self.index.is_embedded(
                self.index.info(0)['img_path']
            ):
                raise DatasetError(
                    f'{self.ann_file}: an embedding cache keys entries by '
                    'image files, and this dataset stores its images inside '
                    'it; train without embedding_cache, or save the images '
                    'as files and name them in an image-path column'
                )
            infos = [self._record(i) for i in range(len(self.index))]
            self.embedding_cache.check(infos, self.pipeline_cfg, self.ann_file)
            self._cache_files = [info['cache_file'] for info in infos]
        self._fully_initialized = True

    def _report_bad_records(self) -> None:
        total, usable = self.index.total, len(self.index)
        if usable == total:
            return
        bad = self.index.bad_records()
        counts = ', '.join(f'{kind}: {n}' for kind, n in count_problems(bad).items())
        if self.on_bad_record == 'strict' or not usable:
            raise DatasetError(
                f'{self.ann_file}: {len(bad)} of {total} records are '
                'unusable; fix or remove them'
                + ('' if usable else ' (none is usable)')
                + ', or set on_bad_record="skip" on the dataset to train '
                f'without them ({counts}):\n' + describe_bad_records(bad)
            )
        print_log(
            f'{self.ann_file}: skipped {len(bad)} of {total} unusable '
            f'records (on_bad_record="skip"; {counts}):\n'
            + describe_bad_records(bad, limit=100),
            logger='current',
            level=logging.WARNING,
        )

    def _check_input_images(self) -> None:
        """One line naming the first record without an ``input_file`` when
        the pipeline packs the input image (FLUX.1 Kontext)."""
        if not needs_input_image(self.pipeline_cfg):
            return
        missing = self.index.without_input()
        if missing:
            first = missing[0]
            raise DatasetError(
                f'{self.ann_file}: record {self.index.record_number(first)} '
                f'({osp.basename(self.index.info(first)["img_path"])}) has no '
                '"input_file", and this config trains on input images (FLUX.1 '
                f'Kontext): give every record one ({len(missing)} of '
                f'{len(self.index)} have none)'
            )

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self.index)

    def _record(self, idx: int) -> dict:
        info = self.index.info(idx)
        info['sample_idx'] = idx
        if self.bucket_ids is not None:
            info['bucket'] = self.buckets.sizes[int(self.bucket_ids[idx])]
        return info

    def get_data_info(self, idx: int) -> dict:
        """The ``idx``-th usable record: ``img_path``, ``text``,
        ``image_size``, ``sample_idx``, ``reference_paths`` (when it names
        its own), ``bucket`` (with buckets)."""
        if not self._fully_initialized:
            self.full_init()
        if idx < 0:
            idx += len(self)
        info = self._record(idx)
        if self._cache_files is not None:
            info['cache_file'] = self._cache_files[idx]
        return info

    def set_draw_epoch(self, seed: int, epoch: int) -> None:
        """Key the samples' random transforms by the run's seed and this
        epoch (``RandomStateHook`` calls it before each training epoch; the
        DataLoader workers, persistent ones included, see it)."""
        self.draw_key.set(seed, epoch)

    def pipeline_input(self, info: dict, seed: int = 0, epoch: int = 0) -> dict:
        """``info`` as the pipeline takes it: the reference drawn
        (``reference_path``), images stored in the source as bytes
        (``img_bytes``, ``reference_bytes``)."""
        info = dict(info)
        paths = info.pop('reference_paths', None)
        if paths:
            info['reference_path'] = draw_reference(
                paths, seed, epoch, info['sample_idx']
            )
        for key, data in (
            ('img_path', 'img_bytes'),
            ('reference_path', 'reference_bytes'),
            ('input_path', 'input_bytes'),
        ):
            if key in info and self.index.is_embedded(info[key]):
                info[key], info[data] = self.index.embedded_bytes(info[key])
        return info

    def prepare_data(self, idx: int) -> dict | None:
        """The sample through the pipeline, or from the embedding cache.

        The pipeline's random transforms draw from ``generator``, the
        sample's own (seed, epoch, sample index). In skip mode a record that
        fails now (its file changed since the check) gives ``None``, and
        MMEngine's dataset fetches another.
        """
        try:
            info = self.get_data_info(idx)
            seed, epoch = self.draw_key.get()
            if self.embedding_cache is not None:
                return self.embedding_cache.load(
                    info, cached_reference_index(info, seed, epoch)
                )
            info = self.pipeline_input(info, seed, epoch)
            info['generator'] = sample_generator(
                seed, epoch, info['sample_idx'], stream='data'
            )
            return self.pipeline(info)
        except DatasetError as err:
            if self.on_bad_record == 'strict':
                raise
            print_log(
                f'skipped a record that failed during training: {err}',
                logger='current',
                level=logging.WARNING,
            )
            return None

    def _rand_another(self) -> int:
        return int(np.random.randint(0, len(self)))
