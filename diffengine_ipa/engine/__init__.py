"""Runtime pieces plugged into MMEngine: hooks, the training loop and the
atomic file backend."""
from .atomic_local_backend import AtomicLocalBackend
from .autocast_optim_wrapper import AutocastOptimWrapper
from .hooks import (
    AdapterCheckpointHook,
    AtomicCheckpointHook,
    IPAdapterVisualizationHook,
    NonFiniteLossGuardHook,
    RandomStateHook,
)
from .resumable_epoch_loop import ResumableEpochBasedTrainLoop

__all__ = [
    'AtomicLocalBackend', 'AutocastOptimWrapper', 'AdapterCheckpointHook',
    'AtomicCheckpointHook', 'IPAdapterVisualizationHook',
    'NonFiniteLossGuardHook', 'RandomStateHook', 'ResumableEpochBasedTrainLoop'
]
