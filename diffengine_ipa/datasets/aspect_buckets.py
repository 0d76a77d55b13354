"""Aspect-ratio buckets: image sizes of about one pixel count, as SDXL trained.

SDXL's multi-aspect training (Podell et al. 2023, arXiv 2307.01952, §2.3)
groups images into buckets: sizes whose sides are multiples of 64 and whose
area is close to 1024², from tall to wide. Each image goes to the bucket of
the nearest aspect ratio, is resized to cover it and cropped to it; a batch
holds one bucket. Here: for every width ``w`` a multiple of ``step``, the
largest height (a multiple of ``step``) with ``w · h ≤ resolution²``, both
ways round, up to ``max_aspect``.
"""

import math

import numpy as np

from ..errors import UserError

__all__ = ['AspectRatioBuckets']


class AspectRatioBuckets:
    """The buckets around ``resolution`` and which one each image takes.

    Args:
        resolution: Side of the square of the buckets' pixel count.
        step: Sides are multiples of this (64: SDXL's, and a multiple of
            every family's VAE factor × patch size).
        max_aspect: The longest side is at most this times the shortest.
    """

    def __init__(
        self, resolution: int | None, step: int = 64, max_aspect: float = 4.0
    ) -> None:
        if resolution is None:
            raise UserError(
                'buckets: no resolution; set resolution= on the '
                'dataset (or in buckets=dict(...))'
            )
        if resolution % step or resolution < step:
            raise UserError(
                f'buckets: resolution {resolution} must be a multiple of step {step}'
            )
        if max_aspect < 1:
            raise UserError(f'buckets: max_aspect {max_aspect} must be >= 1')
        self.resolution, self.step, self.max_aspect = resolution, step, max_aspect
        area, sizes = resolution * resolution, set()
        for width in range(step, int(resolution * math.sqrt(max_aspect)) + step, step):
            height = area // width // step * step
            if height >= step and max(width, height) <= max_aspect * min(width, height):
                sizes |= {(height, width), (width, height)}
        # (height, width), from the tallest to the widest
        self.sizes = sorted(sizes, key=lambda size: size[1] / size[0])
        self._log_ratios = np.log([w / h for h, w in self.sizes])

    def __len__(self) -> int:
        return len(self.sizes)

    def assign(self, sizes: np.ndarray) -> np.ndarray:
        """The bucket of each image, (N, ) indices into :attr:`sizes`, from
        its (N, 2) upright (width, height): the nearest aspect ratio, which
        crops the least."""
        sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
        log_ratio = np.log(np.maximum(sizes[:, 0], 1) / np.maximum(sizes[:, 1], 1))
        right = np.searchsorted(self._log_ratios, log_ratio).clip(
            1, len(self.sizes) - 1
        )
        left = right - 1
        nearer_left = (log_ratio - self._log_ratios[left]) <= (
            self._log_ratios[right] - log_ratio
        )
        return (
            np.where(nearer_left, left, right)
            if len(self.sizes) > 1
            else (np.zeros(len(sizes), np.int64))
        )

    def __repr__(self) -> str:
        return (
            f'AspectRatioBuckets({len(self)} sizes around '
            f'{self.resolution}², step {self.step}, up to '
            f'{self.max_aspect}:1)'
        )
