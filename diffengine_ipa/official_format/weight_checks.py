"""What every weight of an adapter file must be, whatever its layout: a
finite floating-point tensor of the rank its name implies, with no empty
dimension, and a bias as long as its weight.

These checks run before a layout reads sizes from the file, so a malformed
file is one line naming the weight, never an ``IndexError`` or a
``ZeroDivisionError`` (a zero-width norm), and never a black image (NaN/Inf).
"""

import re

import torch

from ..errors import CheckpointError

__all__ = ['expected_rank', 'check_weights']

_ONE_D_WEIGHT = re.compile(
    r'(^|\.)(norm[^.]*|layers\.\d+\.1\.0)\.weight$'
)  # norms, incl. Resampler FF's


def expected_rank(key: str) -> int:
    """The rank a canonical adapter key's tensor has in every layout."""
    if key.endswith('.bias'):
        return 1
    if key.endswith('latents'):
        return 3  # (1, tokens, width)
    if '.linear.' not in key and _ONE_D_WEIGHT.search(key):
        return 1
    return 2  # a linear layer's (out, in)


def check_weights(state: dict, source: str) -> None:
    """Raise :class:`CheckpointError` (one line) at the first weight of
    ``state`` (canonical keys) that no loader could use."""
    if not state:
        raise CheckpointError(f'{source}: holds no adapter weights')
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f'{source}: a weight is named {key!r}, not a string')
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f'{source}: {key} is a {type(value).__name__}, not a tensor'
            )
        if not value.is_floating_point():
            raise CheckpointError(
                f'{source}: {key} holds {value.dtype} '
                'values, not floating-point weights'
            )
        rank = expected_rank(key)
        if value.dim() != rank:
            raise CheckpointError(
                f'{source}: {key} has shape {tuple(value.shape)}; a weight of '
                f'that name has {rank} dimension{"s" if rank > 1 else ""}'
            )
        if 0 in value.shape:
            raise CheckpointError(
                f'{source}: {key} has an empty dimension (shape {tuple(value.shape)})'
            )
        if not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(
                f'{source}: {key} holds NaN/Inf values ({bad} of '
                f'{value.numel()}): the training diverged; use an earlier '
                'checkpoint'
            )
        if key.endswith('.bias'):
            weight = state.get(key[: -len('bias')] + 'weight')
            if (
                isinstance(weight, torch.Tensor)
                and weight.dim() >= 1
                and (weight.shape[0] != value.shape[0])
            ):
                raise CheckpointError(
                    f'{source}: {key} has {value.shape[0]} values, its weight '
                    f'{weight.shape[0]} rows'
                )
