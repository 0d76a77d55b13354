"""A short identity of a set of modules' weights, to tell caches apart."""

import hashlib
import json
from typing import Any

import torch
from torch import nn

__all__ = ['fingerprint_modules']


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A quantized weight (a torchao tensor subclass) as the values it holds."""
    if type(tensor) not in (torch.Tensor, nn.Parameter) and hasattr(
        tensor, 'dequantize'
    ):
        return tensor.dequantize()
    return tensor


@torch.no_grad()
def fingerprint_modules(modules: dict[str, Any], extra: str = '') -> str:
    """SHA-256 over each module's class, config and parameters.

    Each tensor contributes its name, shape, dtype, and float64 sum and sum
    of squares: cheap (one pass over the weights) and changed by any real
    change of a weight (a quantized weight counts as its dequantized
    values). A tokenizer among ``modules`` adds its vocabulary; ``extra``
    adds anything else that decides the outputs.
    """
    digest = hashlib.sha256(extra.encode())
    for name, module in modules.items():
        digest.update(f'{name}:{type(module).__name__}'.encode())
        if not isinstance(module, nn.Module):  # a tokenizer
            vocab = sorted(module.get_vocab().items())
            digest.update(json.dumps(vocab).encode())
            continue
        config = getattr(module, 'config', None)
        if config is not None:
            config = config.to_dict() if hasattr(config, 'to_dict') else dict(config)
            digest.update(json.dumps(config, sort_keys=True, default=str).encode())
        for key, tensor in module.state_dict().items():
            values = _plain(tensor.detach()).double()
            digest.update(f'{key}{tuple(tensor.shape)}{tensor.dtype}'.encode())
            digest.update(
                f'{values.sum().item():.10e}'
                f'{values.square().sum().item():.10e}'.encode()
            )
    return digest.hexdigest()
