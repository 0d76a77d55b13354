"""Models with random weights: the tiny architectures of the offline demo and
the tests, the full-size ones (real shapes, for parameter counts, memory
estimates and benchmarks), tokenizers built offline, and writers that save
them as the folders real checkpoints come in. A model source
``random:<architecture>`` reads from here; nothing here is needed to train
on real weights."""

from .architectures import architecture_spec, base_architectures
from .builders import (
    build_component,
    write_base_model,
    write_clip_judge,
    write_image_encoder,
)
from .tokenizers import build_tiny_clip_tokenizer, build_tiny_t5_tokenizer

__all__ = [
    'architecture_spec',
    'base_architectures',
    'build_component',
    'write_base_model',
    'write_clip_judge',
    'write_image_encoder',
    'build_tiny_clip_tokenizer',
    'build_tiny_t5_tokenizer',
]
