"""Scaffolding for tests, the offline demo and benchmarks: architectures with
random weights, tokenizers built offline, and writers that save them as the
folders real checkpoints come in. Nothing here is needed to train on real
weights."""

from .architectures import architecture_spec
from .builders import (
    build_component,
    write_base_model,
    write_clip_judge,
    write_image_encoder,
)
from .tokenizers import build_tiny_clip_tokenizer, build_tiny_t5_tokenizer

__all__ = [
    'architecture_spec',
    'build_component',
    'write_base_model',
    'write_clip_judge',
    'write_image_encoder',
    'build_tiny_clip_tokenizer',
    'build_tiny_t5_tokenizer',
]
