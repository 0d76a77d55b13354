"""Move a collated batch to the model's device, as float32 tensors."""

from typing import Any

import torch
from mmengine.model import BaseDataPreprocessor

from ..registry import MODELS

__all__ = ['IPAdapterDataPreprocessor']


@MODELS.register_module()
class IPAdapterDataPreprocessor(BaseDataPreprocessor):
    """Stack per-sample tensors if needed, move to device, cast floats to fp32.

    Mixed precision is the optim wrapper's job (autocast), not this one's.
    """

    def forward(self, data: dict, training: bool = False) -> dict[str, Any]:
        inputs = dict(data['inputs'])
        for key, value in inputs.items():
            if (
                isinstance(value, (list, tuple))
                and value
                and isinstance(value[0], torch.Tensor)
            ):
                value = torch.stack(value)
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                value = value.float()
            inputs[key] = value
        return self.cast_data(
            dict(inputs=inputs, data_samples=data.get('data_samples'))
        )
