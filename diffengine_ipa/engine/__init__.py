"""Runtime pieces plugged into MMEngine: hooks, the training loop, the
atomic file backend and FSDP's wrap policy."""
from .atomic_local_backend import AtomicLocalBackend
from .autocast_optim_wrapper import AutocastOptimWrapper
from .block_wrap_policy import block_wrap_policy
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
    'NonFiniteLossGuardHook', 'RandomStateHook', 'ResumableEpochBasedTrainLoop',
    'block_wrap_policy'
]
