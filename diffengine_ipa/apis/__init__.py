"""High-level entry points: training, conversion, the inferencer, batch
jobs, pipeline loading, the embedding cache and the memory estimate."""

from ..official_format import load_adapter
from .batch_jobs import run_jobs
from .convert import convert_checkpoint, describe_adapter_file
from .embedding_cache import build_embedding_cache
from .inference import AdapterSpec, build_pipeline, generation_settings, load_pipeline
from .inferencer import (
    IPAdapterInferencer,
    face_prompt,
    load_image_embeds,
    save_image_embeds,
)
from .train import train

__all__ = [
    'AdapterSpec',
    'IPAdapterInferencer',
    'build_embedding_cache',
    'build_pipeline',
    'convert_checkpoint',
    'describe_adapter_file',
    'face_prompt',
    'generation_settings',
    'load_adapter',
    'load_image_embeds',
    'load_pipeline',
    'run_jobs',
    'save_image_embeds',
    'train',
]
