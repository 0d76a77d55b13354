"""Checkpoints as plain data, loadable with ``torch.load(weights_only=True)``.

MMEngine stores its message hub as ``HistoryBuffer`` objects and numpy
scalars, which ``weights_only`` loading refuses (torch ≥ 2.6). Converting
them to lists and numbers on save, and back on load, lets every loader of our
checkpoints, MMEngine's resume included, stay in the safe mode.
"""

import logging
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log

__all__ = ['to_plain', 'restore_history_buffers']

_HISTORY_TAG = '__history_buffer__'
_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.Size)


def to_plain(obj: Any) -> Any:
    """A copy of ``obj`` made of dicts, lists, tuples, numbers, strings and
    tensors only; history buffers become tagged dicts."""
    if isinstance(obj, np.generic):  # before _PLAIN: np.float64 is a float
        return obj.item()
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {
            _HISTORY_TAG: True,
            'log_history': log.tolist(),
            'count_history': count.tolist(),
            'max_length': obj.max_length,
        }
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        cls = OrderedDict if isinstance(obj, OrderedDict) else dict
        return cls((key, to_plain(value)) for key, value in obj.items())
    if isinstance(obj, tuple):
        return tuple(to_plain(value) for value in obj)
    if isinstance(obj, (list, set)):
        return [to_plain(value) for value in obj]
    print_log(
        f'checkpoint: stored a {type(obj).__name__} as its repr',
        logger='current',
        level=logging.DEBUG,
    )
    return repr(obj)


def restore_history_buffers(message_hub: dict) -> None:
    """Turn the tagged dicts of a plain message hub back into buffers."""
    scalars = message_hub.get('log_scalars', {})
    for key, value in scalars.items():
        if isinstance(value, dict) and value.get(_HISTORY_TAG):
            scalars[key] = HistoryBuffer(
                value['log_history'], value['count_history'], value['max_length']
            )
