"""Transforms of a training sample: load, CLIP preprocess, resize/crop/flip,
pack. Each follows mmcv's ``BaseTransform`` contract."""
from .clip_preprocess import CLIPImageProcess
from .formatting import ComputeTimeIds, PackInputs, ToVAEInput
from .geometric import CenterCrop, RandomCrop, RandomHorizontalFlip, ResizeShortEdge
from .loading import LoadImage

__all__ = [
    'LoadImage', 'CLIPImageProcess', 'ResizeShortEdge', 'CenterCrop',
    'RandomCrop', 'RandomHorizontalFlip', 'ToVAEInput', 'ComputeTimeIds', 'PackInputs'
]
