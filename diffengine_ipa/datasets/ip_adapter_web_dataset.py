"""WebDataset tar shards, read as a stream and split across ranks and workers.

A shard holds samples as same-keyed members: ``0001.jpg`` (or ``.png``,
``.jpeg``, ``.webp``), ``0001.txt`` (the caption) and, for paired data,
``0001.ref.jpg`` (the reference). Every rank × DataLoader worker (a
*global worker*) reads its own part of the shards: whole shards when there
are at least as many shards as global workers (shard ``s`` goes to worker
``s mod (ranks × workers)``), otherwise every ``ranks × workers``-th sample
of the shards. No sample is read twice in an epoch, the split does not
depend on timing, and each epoch shuffles (shard order, then a buffer of
samples) from the run's seed and the epoch. Every global worker yields the
same number of samples (the smallest share, in whole batches), so ranks
step together and ``len(dataloader)`` is exact.

With ``buckets`` each worker keeps a buffer per aspect-ratio bucket and
yields a bucket's samples ``batch_size`` at a time, so a batch (made of one
worker's consecutive samples) never mixes buckets.
"""

import logging
import os.path as osp
import tarfile
import zlib
from collections.abc import Iterator

import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from torch.utils.data import IterableDataset, get_worker_info

from ..errors import DatasetError, ImageError
from ..image_io import check_image
from ..registry import DATASETS
from ..sample_generators import DrawKey, sample_generator
from .aspect_buckets import AspectRatioBuckets

__all__ = ['IPAdapterWebDataset', 'expand_shards']

IMAGE_KEYS = ('jpg', 'jpeg', 'png', 'webp')


def expand_shards(shards: str | list[str]) -> list[str]:
    """Shard paths from a list, a glob or a brace pattern
    (``data/{000..099}.tar``)."""
    import glob

    import braceexpand

    patterns = [shards] if isinstance(shards, str) else list(shards)
    found = []
    for pattern in patterns:
        for path in braceexpand.braceexpand(pattern):
            found.extend(sorted(glob.glob(path)) if glob.has_magic(path) else [path])
    missing = [path for path in found if not osp.isfile(path)]
    if missing or not found:
        raise DatasetError(
            f'{missing[0] if missing else shards}: no such WebDataset shard'
        )
    return found


def _sample_keys(path: str) -> list[str]:
    """The keys of a shard's samples, in order (member headers only)."""
    keys = []
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isfile():
                    key = osp.basename(member.name).split('.', 1)[0]
                    key = osp.join(osp.dirname(member.name), key)
                    if not keys or keys[-1] != key:
                        keys.append(key)
    except (OSError, tarfile.TarError) as err:
        raise DatasetError(f'{path}: not a readable tar shard ({err})') from None
    return keys


def _caption(text: bytes | None) -> str | None:
    """The caption member as text; ``None`` when it is not UTF-8."""
    try:
        return None if text is None else text.decode('utf-8').strip()
    except UnicodeDecodeError:
        return None


@DATASETS.register_module()
class IPAdapterWebDataset(IterableDataset):
    """Samples from WebDataset tar shards, streamed (see the module doc).

    Args:
        shards: The shards: a list, a glob or a brace pattern.
        pipeline: Transforms applied to each sample (as
            :class:`IPAdapterDataset`'s).
        batch_size: The DataLoader's batch size (the shares are whole
            batches, and buckets fill batches).
        num_workers: The DataLoader's workers (0 counts as 1).
        image_key: Extensions of the target image, ``;``-separated.
        text_key: Extension of the caption.
        reference_key: Extensions of the reference, ``;``-separated.
        buckets: Aspect-ratio buckets (see :class:`.AspectRatioBuckets`).
        shuffle_buffer: Samples shuffled together (0: no shuffle).
        min_image_side: Images with a shorter side are unusable.
        on_bad_record: ``'strict'`` stops at an unusable sample (one line
            naming the shard and key); ``'skip'`` logs it and goes on (a
            worker left short of its share reads its shards again from the
            start, so that every rank steps the same number of times).
        rank: This process's rank (default: from ``torch.distributed``).
        world_size: The number of ranks (default: likewise).
    """

    def __init__(
        self,
        shards: str | list[str],
        pipeline: list,
        batch_size: int = 1,
        num_workers: int = 0,
        image_key: str = 'jpg;jpeg;png;webp',
        text_key: str = 'txt',
        reference_key: str = 'ref.jpg;ref.jpeg;ref.png;ref.webp',
        buckets: dict | None = None,
        shuffle_buffer: int = 1000,
        min_image_side: int = 64,
        on_bad_record: str = 'strict',
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if on_bad_record not in ('strict', 'skip'):
            raise DatasetError(
                f"on_bad_record={on_bad_record!r}: use 'strict' or 'skip'"
            )
        self.shards = expand_shards(shards)
        self.pipeline = Compose(pipeline)
        self.batch_size, self.num_workers = batch_size, max(1, num_workers)
        self.image_keys = image_key.split(';')
        self.reference_keys = reference_key.split(';')
        self.text_key = text_key
        self.buckets = AspectRatioBuckets(**buckets) if buckets else None
        self.shuffle_buffer = shuffle_buffer
        self.min_image_side, self.on_bad_record = min_image_side, on_bad_record
        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        self.draw_key = DrawKey()
        self._sizes = [len(_sample_keys(path)) for path in self.shards]
        self.per_worker = self._share()

    # --- the split ------------------------------------------------------------

    @property
    def global_workers(self) -> int:
        return self.world_size * self.num_workers

    def _by_shard(self) -> bool:
        return len(self.shards) >= self.global_workers

    def _share(self) -> int:
        """Samples every global worker yields per epoch: the smallest share,
        in whole batches (with buckets: the batches it can surely fill)."""
        n = self.global_workers
        if self._by_shard():
            share = min(sum(self._sizes[k::n]) for k in range(n))
        else:
            share = sum(self._sizes) // n
        batches = share // self.batch_size
        if self.buckets is not None:  # each bucket may strand batch_size - 1
            batches = max(
                0,
                (share - len(self.buckets) * (self.batch_size - 1)) // self.batch_size,
            )
        if batches == 0:
            raise DatasetError(
                f'{self.shards[0]}: the shards hold {sum(self._sizes)} '
                f'samples, too few for {n} workers × batches of '
                f'{self.batch_size}' + (' per bucket' if self.buckets else '')
            )
        return batches * self.batch_size

    def __len__(self) -> int:
        """Samples this rank yields per epoch."""
        return self.per_worker * self.num_workers

    def set_draw_epoch(self, seed: int, epoch: int) -> None:
        """Key the shuffles and the random transforms by the run's seed and
        this epoch (see :class:`IPAdapterDataset`)."""
        self.draw_key.set(seed, epoch)

    def _worker(self) -> int:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        workers = info.num_workers if info is not None else 1
        if workers != self.num_workers:
            raise DatasetError(
                f'{self.shards[0]}: the DataLoader has {workers} workers, the '
                f'dataset was told num_workers={self.num_workers}; set both '
                'alike'
            )
        return self.rank * self.num_workers + worker

    def _members(self, worker: int, seed: int, epoch: int) -> Iterator[dict]:
        """This global worker's raw samples (dicts of member bytes)."""
        import webdataset as wds

        n = self.global_workers
        order = torch.Generator().manual_seed(
            (seed * 1_000_003 + epoch * 7_919 + worker) & (2**63 - 1)
        )
        if self._by_shard():
            mine = self.shards[worker::n]
            mine = [mine[i] for i in torch.randperm(len(mine), generator=order)]
            keep = None
        else:
            mine, keep = self.shards, worker
        stream = wds.WebDataset(
            mine,
            shardshuffle=False,
            empty_check=False,
            nodesplitter=None,
            workersplitter=None,
        )
        for position, sample in enumerate(stream):
            if keep is None or position % n == keep:
                yield sample

    def _shuffled(
        self, samples: Iterator[dict], seed: int, epoch: int, worker: int
    ) -> Iterator[dict]:
        if self.shuffle_buffer <= 1:
            yield from samples
            return
        rng = np.random.default_rng([seed, epoch, worker])
        buffer = []
        for sample in samples:
            buffer.append(sample)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(int(rng.integers(len(buffer))))
        rng.shuffle(buffer)
        yield from buffer

    # --- one sample -------------------------------------------------------------

    def _first(self, sample: dict, keys: list[str]) -> bytes | None:
        return next((sample[key] for key in keys if key in sample), None)

    def _info(self, sample: dict, log: bool = True) -> dict | None:
        """The pipeline's input for a raw sample, or ``None`` (skipped)."""
        name = f'{sample.get("__url__")}#{sample["__key__"]}'
        image = self._first(sample, self.image_keys)
        text = sample.get(self.text_key)
        problem, size = None, None
        caption = _caption(text)
        if image is None:
            problem = f'no image member ({"/".join(self.image_keys)})'
        elif text is None or not text.strip():
            problem = f'no caption member (.{self.text_key})'
        elif caption is None:
            problem = (
                f'caption (.{self.text_key}) is not UTF-8 '
                f'({text[:40]!r}); save it as UTF-8'
            )
        else:
            try:
                size = check_image(name, self.min_image_side, image)
            except ImageError as err:
                problem = err.reason
        if problem is not None:
            message = f'{name}: {problem}'
            if self.on_bad_record == 'strict':
                raise DatasetError(
                    message + '; fix the shard or set '
                    'on_bad_record="skip" on the dataset'
                )
            if log:  # a padding pass does not log its skips again
                print_log(f'skipped {message}', logger='current', level=logging.WARNING)
            return None
        info = dict(
            img_path=name,
            img_bytes=image,
            text=caption,
            image_size=size,
            sample_idx=zlib.crc32(name.encode()),
        )
        reference = self._first(sample, self.reference_keys)
        if reference is not None:
            info.update(reference_path=name + '.ref', reference_bytes=reference)
        if self.buckets is not None:
            info['bucket'] = self.buckets.sizes[
                int(self.buckets.assign(np.array([size]))[0])
            ]
        return info

    def _usable(self, worker: int, seed: int, epoch: int) -> Iterator[dict]:
        """This worker's usable samples; when skipped ones left it short of
        its share, its stream again from the start (a pad, as
        ``DistributedSampler`` pads), so that every worker of every rank
        yields the same count and no rank waits for another at a step."""
        passes = 0
        while True:
            usable = 0
            for sample in self._shuffled(
                self._members(worker, seed, epoch), seed, epoch, worker
            ):
                info = self._info(sample, log=passes == 0)
                if info is not None:
                    usable += 1
                    yield info
            if usable == 0:
                raise DatasetError(
                    f'{self.shards[0]}: no usable sample in the shards of '
                    f'worker {worker} (rank {self.rank}); fix the shards'
                )
            passes += 1

    def __iter__(self) -> Iterator[dict]:
        worker = self._worker()
        seed, epoch = self.draw_key.get()
        infos = self._usable(worker, seed, epoch)
        if self.buckets is not None:
            infos = self._bucketed(infos)
        for count, info in enumerate(infos):
            if count == self.per_worker:
                return
            info['generator'] = sample_generator(
                seed, epoch, info['sample_idx'], stream='data'
            )
            yield self.pipeline(info)

    def _bucketed(self, infos: Iterator[dict]) -> Iterator[dict]:
        """Samples regrouped so that each run of ``batch_size`` is one
        bucket (a per-worker buffer per bucket)."""
        waiting: dict[tuple, list] = {}
        for info in infos:
            group = waiting.setdefault(info['bucket'], [])
            group.append(info)
            if len(group) == self.batch_size:
                yield from group
                group.clear()
