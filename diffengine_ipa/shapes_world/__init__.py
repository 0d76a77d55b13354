"""A procedural world of coloured shapes that a CPU can learn (issue 25)."""

from .world import (
    DEFAULT_SIZE,
    HUES,
    SHAPES,
    Classification,
    Scene,
    chance_levels,
    classify,
    colour_caption,
    draw,
    reference_scene,
    render,
    sample_scene,
    shape_caption,
    uncoloured,
)

__all__ = [
    'DEFAULT_SIZE',
    'HUES',
    'SHAPES',
    'Classification',
    'Scene',
    'chance_levels',
    'classify',
    'colour_caption',
    'draw',
    'reference_scene',
    'render',
    'sample_scene',
    'shape_caption',
    'uncoloured',
]
