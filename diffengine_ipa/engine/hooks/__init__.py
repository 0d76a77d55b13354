"""Hooks registered in diffengine_ipa's HOOKS registry."""
from .adapter_checkpoint_hook import AdapterCheckpointHook
from .adapter_ema_hook import AdapterEMA, AdapterEMAHook
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_guard_hook import NonFiniteLossGuardHook
from .random_state_hook import RandomStateHook
from .resume_check_hook import ResumeCheckHook
from .visualization_hook import IPAdapterVisualizationHook

__all__ = [
    'AdapterCheckpointHook', 'AdapterEMA', 'AdapterEMAHook',
    'AtomicCheckpointHook',
    'IPAdapterVisualizationHook', 'NonFiniteLossGuardHook', 'RandomStateHook',
    'ResumeCheckHook'
]
