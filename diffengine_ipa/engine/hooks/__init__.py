"""Hooks registered in diffengine_ipa's HOOKS registry."""

from .adapter_checkpoint_hook import AdapterCheckpointHook
from .adapter_ema_hook import AdapterEMA, AdapterEMAHook
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .generation_progress_hook import GenerationProgressHook
from .non_finite_loss_guard_hook import NonFiniteLossGuardHook
from .progress_logger_hook import ProgressLoggerHook
from .random_state_hook import RandomStateHook
from .reference_gain_hook import ReferenceGainHook
from .release_encoders_hook import ReleaseEncodersHook
from .resume_check_hook import ResumeCheckHook
from .visualization_hook import IPAdapterVisualizationHook

__all__ = [
    'AdapterCheckpointHook',
    'AdapterEMA',
    'AdapterEMAHook',
    'AtomicCheckpointHook',
    'GenerationProgressHook',
    'IPAdapterVisualizationHook',
    'NonFiniteLossGuardHook',
    'ProgressLoggerHook',
    'RandomStateHook',
    'ReferenceGainHook',
    'ReleaseEncodersHook',
    'ResumeCheckHook',
]
