"""Batches of one aspect-ratio bucket each, split across ranks."""

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from ..errors import UserError
from ..registry import DATA_SAMPLERS

__all__ = ['BucketBatchSampler']


@DATA_SAMPLERS.register_module()
class BucketBatchSampler(Sampler):
    """Every batch holds samples of one bucket; ranks get disjoint batches.

    Each epoch every rank makes the same plan from the run's seed and the
    epoch: each bucket's samples shuffled and cut into batches (an
    incomplete last batch is dropped, or with ``pad`` completed with other
    samples of its bucket), all batches shuffled, and rank ``r`` takes
    batches ``r, r + world_size, ...``, as many on every rank. So a batch
    never mixes buckets, ranks see disjoint batches and step together, and
    an epoch is the same on a rerun or resume.

    Use it as the dataloader's ``batch_sampler`` over MMEngine's
    ``DefaultSampler`` (which supplies the dataset, seed, shuffle, rank and
    epoch); the dataset needs ``buckets``.

    Args:
        sampler: The dataloader's ``DefaultSampler``.
        batch_size: Samples per batch.
        pad: Complete each bucket's last batch instead of dropping it
            (a bucket smaller than a batch then still trains).
    """

    def __init__(self, sampler: Sampler, batch_size: int, pad: bool = False) -> None:
        dataset = sampler.dataset
        if getattr(dataset, 'buckets', None) is None:
            raise UserError(
                'BucketBatchSampler needs a dataset with buckets=dict(resolution=...)'
            )
        if not len(dataset):
            raise UserError('BucketBatchSampler: the dataset is empty')
        self.sampler, self.batch_size, self.pad = sampler, batch_size, pad
        self.bucket_ids = np.asarray(dataset.bucket_ids)
        self.rank = getattr(sampler, 'rank', 0)
        self.world_size = getattr(sampler, 'world_size', 1)
        self._length = len(self._plan())  # the same every epoch

    def _plan(self) -> list[list[int]]:
        """This rank's batches of this epoch."""
        epoch = getattr(self.sampler, 'epoch', 0)
        seed = getattr(self.sampler, 'seed', 0) or 0
        shuffle = getattr(self.sampler, 'shuffle', True)
        rng = np.random.default_rng([seed, epoch])
        batches = []
        for bucket in np.unique(self.bucket_ids):
            members = np.flatnonzero(self.bucket_ids == bucket)
            if shuffle:
                members = rng.permutation(members)
            full = len(members) // self.batch_size * self.batch_size
            if self.pad and full < len(members):
                extra = self.batch_size - (len(members) - full)
                members = np.concatenate([members, np.resize(members, extra)])
                full = len(members)
            batches += [
                members[i : i + self.batch_size].tolist()
                for i in range(0, full, self.batch_size)
            ]
        if shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        per_rank = len(batches) // self.world_size
        return batches[self.rank : per_rank * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._plan()

    def __len__(self) -> int:
        return self._length
