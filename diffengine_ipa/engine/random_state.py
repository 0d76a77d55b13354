"""A process's random state (Python, NumPy, torch CPU and CUDA) as plain
data, so that it fits a ``weights_only`` checkpoint."""

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ['get_random_state', 'set_random_state', 'preserved_random_state']


def get_random_state() -> dict[str, Any]:
    """Every generator a training step may draw from."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(
        python=[version, list(internal), gauss],
        numpy=[kind, keys.tolist(), pos, has_gauss, cached],
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    """Undo the draws made since ``state`` was taken."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Draws inside the block (sampling, validation) leave no trace."""
    state = get_random_state()
    try:
        yield
    finally:
        set_random_state(state)
