"""High-level entry points used by the command-line tools."""
from .embedding_cache import build_embedding_cache
from .inference import build_pipeline, check_adapter_fits, generate, load_adapter

__all__ = [
    'build_embedding_cache', 'build_pipeline', 'check_adapter_fits',
    'generate', 'load_adapter'
]
