"""High-level entry points used by the command-line tools."""
from ..official_format import load_adapter
from .embedding_cache import build_embedding_cache
from .inference import build_pipeline, generation_settings

__all__ = ['build_embedding_cache', 'build_pipeline', 'generation_settings',
           'load_adapter']
