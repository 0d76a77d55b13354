"""Datasets and their transforms."""
from .ip_adapter_dataset import IPAdapterDataset, read_records
from .ip_adapter_eval_dataset import IPAdapterEvalDataset
from .transforms import (
                         CenterCrop,
                         CLIPImageProcess,
                         ComputeTimeIds,
                         LoadImage,
                         PackInputs,
                         RandomCrop,
                         RandomHorizontalFlip,
                         ResizeShortEdge,
                         ToVAEInput,
)

__all__ = [
    'IPAdapterDataset', 'IPAdapterEvalDataset', 'read_records', 'LoadImage',
    'CLIPImageProcess', 'ResizeShortEdge', 'CenterCrop', 'RandomCrop',
    'RandomHorizontalFlip', 'ToVAEInput', 'ComputeTimeIds', 'PackInputs'
]
