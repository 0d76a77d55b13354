"""Datasets and their transforms."""

from . import transforms
from .aspect_buckets import AspectRatioBuckets
from .bucket_batch_sampler import BucketBatchSampler
from .ip_adapter_dataset import IPAdapterDataset, read_records
from .ip_adapter_eval_dataset import IPAdapterEvalDataset
from .ip_adapter_web_dataset import IPAdapterWebDataset
from .transforms import *  # noqa: F403 (all of transforms.__all__)

__all__ = [
    'IPAdapterDataset',
    'IPAdapterEvalDataset',
    'IPAdapterWebDataset',
    'AspectRatioBuckets',
    'BucketBatchSampler',
    'read_records',
    *transforms.__all__,
]
