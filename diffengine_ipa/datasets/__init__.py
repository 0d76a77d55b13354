"""Datasets and their transforms."""
from .ip_adapter_dataset import IPAdapterDataset, read_records
from .ip_adapter_eval_dataset import IPAdapterEvalDataset
from .transforms import (
                         CenterCrop,
                         ComputeTimeIds,
                         LoadImage,
                         PackInputs,
                         PreprocessReference,
                         RandomCrop,
                         RandomHorizontalFlip,
                         ResizeShortEdge,
                         ToVAEInput,
)

__all__ = [
    'IPAdapterDataset', 'IPAdapterEvalDataset', 'read_records', 'LoadImage',
    'PreprocessReference', 'ResizeShortEdge', 'CenterCrop', 'RandomCrop',
    'RandomHorizontalFlip', 'ToVAEInput', 'ComputeTimeIds', 'PackInputs'
]
