"""Transforms of a training sample: load, CLIP preprocess, resize/crop/flip,
pack. Each follows mmcv's ``BaseTransform`` contract."""

from .formatting import ComputeTimeIds, PackInputs, ToVAEInput
from .geometric import (
    CenterCrop,
    RandomCrop,
    RandomHorizontalFlip,
    ResizeCropToBucket,
    ResizeShortEdge,
    fill_resolution,
)
from .loading import LoadFaceEmbedding, LoadImage
from .preprocess_reference import PreprocessReference

__all__ = [
    'LoadFaceEmbedding',
    'LoadImage',
    'PreprocessReference',
    'ResizeShortEdge',
    'CenterCrop',
    'RandomCrop',
    'RandomHorizontalFlip',
    'ResizeCropToBucket',
    'ToVAEInput',
    'ComputeTimeIds',
    'PackInputs',
    'fill_resolution',
]
