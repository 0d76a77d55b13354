"""High-level entry points: training, evaluation, conversion, the
inferencer, generating image files (what ``tools/infer.py`` runs), batch
jobs, pipeline loading, the embedding cache and the memory estimate.

Each name is imported from its module when first used, so that a tool
importing one of them (``tools/convert.py``) does not pay for the others'
libraries.
"""

import importlib
from typing import Any

# name -> the module that defines it
_HOMES = {
    'AdapterSpec': '.inference',
    'Evaluation': '.adapter_evaluation',
    'GeneratedFiles': '.file_generation',
    'GenerationRequest': '.file_generation',
    'IPAdapterInferencer': '.inferencer',
    'build_embedding_cache': '.embedding_cache',
    'build_pipeline': '.inference',
    'convert_checkpoint': '.convert',
    'describe_adapter_file': '.convert',
    'evaluate': '.adapter_evaluation',
    'face_prompt': '.inferencer',
    'generate_files': '.file_generation',
    'generation_settings': '.inference',
    'load_adapter': '..official_format',
    'load_image_embeds': '.inferencer',
    'load_pipeline': '.inference',
    'run_jobs': '.batch_jobs',
    'save_image_embeds': '.inferencer',
    'train': '.train',
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
