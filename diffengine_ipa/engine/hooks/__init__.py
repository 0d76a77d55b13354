"""Hooks registered in diffengine_ipa's HOOKS registry."""
from .adapter_checkpoint_hook import AdapterCheckpointHook
from .visualization_hook import IPAdapterVisualizationHook

__all__ = ['AdapterCheckpointHook', 'IPAdapterVisualizationHook']
