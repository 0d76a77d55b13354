"""Mixed precision by autocast alone, on any device."""

import contextlib
from collections.abc import Iterator

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from ..registry import OPTIM_WRAPPERS

__all__ = ['AutocastOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """MMEngine's ``OptimWrapper`` with the forward pass under autocast.

    For bf16, which has fp32's range and needs no loss scaling, on GPUs and
    on CPUs alike (MMEngine's ``AmpOptimWrapper`` refuses CPUs). For fp16 on
    CUDA use ``AmpOptimWrapper`` (loss scaling).

    Args:
        dtype: ``'bfloat16'`` (default) or ``'float16'``.
        **kwargs: As for :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        device = next(model.parameters()).device.type
        with (
            super().optim_context(model),
            torch.autocast(device, dtype=self.cast_dtype),
        ):
            yield
