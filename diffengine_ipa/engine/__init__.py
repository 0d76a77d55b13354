"""Runtime pieces plugged into MMEngine: hooks, the training loop, the
atomic file backend, the safe checkpoint loader and FSDP's wrap policy."""

from . import hooks
from .atomic_local_backend import AtomicLocalBackend
from .autocast_optim_wrapper import AutocastOptimWrapper
from .block_wrap_policy import block_wrap_policy
from .hooks import *  # noqa: F403 (all of hooks.__all__)
from .resumable_epoch_loop import ResumableEpochBasedTrainLoop
from .safe_checkpoint_loader import load_from_safe_local

__all__ = [
    'AtomicLocalBackend',
    'AutocastOptimWrapper',
    'ResumableEpochBasedTrainLoop',
    'block_wrap_policy',
    'load_from_safe_local',
    *hooks.__all__,
]
