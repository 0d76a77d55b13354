"""A held-out validation split of a training set: a fixed draw of a fraction
of its usable records, the same on every run, rank and worker."""

import numpy as np

from ..errors import DatasetError

__all__ = ['held_out_split', 'SPLITS']

SPLITS = ('train', 'val')
SPLIT_SEED = 0  # not the run's seed: the split stays when the seed changes


def held_out_split(
    usable: np.ndarray, fraction: float, split: str, source: str
) -> np.ndarray:
    """The positions of ``usable`` that ``split`` keeps: ``'val'`` the held
    out ``fraction`` (at least one record), ``'train'`` the rest."""
    if split not in SPLITS:
        raise DatasetError(
            f'{source}: split={split!r}: use {" or ".join(map(repr, SPLITS))}'
        )
    if not 0 < fraction < 1:
        raise DatasetError(
            f'{source}: val_split={fraction}: give a fraction between 0 and 1, e.g. 0.1'
        )
    usable = np.asarray(usable)
    held = max(1, round(len(usable) * fraction))
    if held >= len(usable):
        raise DatasetError(
            f'{source}: val_split={fraction} of '
            f'{len(usable)} records leaves none to train on'
        )
    chosen = np.zeros(len(usable), dtype=bool)
    chosen[np.random.default_rng(SPLIT_SEED).permutation(len(usable))[:held]] = True
    return usable[chosen if split == 'val' else ~chosen]
