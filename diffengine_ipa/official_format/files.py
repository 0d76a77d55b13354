"""IP-Adapter files: read them without running code, write them atomically.

* ``.safetensors``: one flat dict in the layout's own names (see
  :mod:`.layouts`), with metadata in the header.
* ``.bin``: the canonical names split in two, ``{"image_proj": {...},
  "ip_adapter": {...}}``, in that order (FLUX's loader requires it).

Files a user hands us are read with safetensors or ``torch.load(...,
weights_only=True)``: a pickle that would run code is refused, not run.
"""

import io
import os.path as osp
import pickle
import re
from typing import Any

import torch

from ..errors import CheckpointError
from ..fileio import atomic_write_bytes
from ..work_dir import POINTER, read_pointer
from .layouts import layout_of

__all__ = [
    'load_weights_file',
    'find_checkpoint',
    'nest_official',
    'save_official',
    'TUTORIAL_FILES',
]

# What the official tutorial_train*.py scripts (accelerate) leave in checkpoint-N/.
TUTORIAL_FILES = ('model.safetensors', 'pytorch_model.bin')


def load_weights_file(path: str, map_location: Any = 'cpu') -> tuple[dict, dict]:
    """Read a ``.safetensors`` or a torch pickle without running code.

    Returns:
        ``(contents, metadata)``; metadata is the safetensors header's.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    if path.endswith('.safetensors'):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework='pt', device='cpu') as f:
                return (
                    {key: f.get_tensor(key) for key in f.keys()},
                    f.metadata() or {},
                )
        except (SafetensorError, OSError) as err:
            raise CheckpointError(
                f'{path}: not a readable safetensors file ({err})'
            ) from None
    try:
        return torch.load(path, map_location=map_location, weights_only=True), {}
    except Exception as err:  # torch raises many kinds for a non-checkpoint
        found = re.search(r'GLOBAL ([\w.]+)', str(err))
        if isinstance(err, pickle.UnpicklingError) and found:
            raise CheckpointError(
                f'{path}: refused to load: the pickle calls {found[1]}, '
                'which could run code. Files written by this kit and official '
                'IP-Adapter files load safely; use .safetensors, or convert '
                'the file yourself where you trust it'
            ) from None
        raise CheckpointError(
            f'{path}: not a torch checkpoint or safetensors file ({type(err).__name__})'
        ) from None


def find_checkpoint(path: str) -> str:
    """A checkpoint file; the last checkpoint of a work dir (its pointer read
    relative to it); or the weights in an official script's ``checkpoint-N``
    folder. One line when there is none."""
    if not osp.isdir(path):
        if not osp.isfile(path):
            raise CheckpointError(f'{path}: no such file or folder')
        return path
    for name in TUTORIAL_FILES:
        if osp.isfile(osp.join(path, name)):
            return osp.join(path, name)
    found = read_pointer(path)
    if found is None:
        raise CheckpointError(
            f'{path}: a folder without a `{POINTER}` file; pass a checkpoint'
        )
    return found


def nest_official(state: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Canonical keys → ``{"image_proj": {...}, "ip_adapter": {...}}``."""
    nested: dict[str, dict] = {'image_proj': {}, 'ip_adapter': {}}
    for key, value in state.items():
        part, name = key.split('.', 1)
        nested[part][name] = value
    return nested


def save_official(
    state: dict[str, torch.Tensor], path: str, metadata: dict[str, Any] | None = None
) -> None:
    """Write a canonical state: ``.safetensors`` in the layout's file names,
    or the nested ``.bin``. Written to a temporary file, read back and
    compared, and only then renamed over ``path``: a failed write or check
    leaves what was at ``path`` as it was."""
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    if path.endswith('.safetensors'):
        from safetensors.torch import save

        meta = {k: str(v) for k, v in (metadata or {}).items()}
        contents = layout_of(state).to_file(state)
        data = save(contents, metadata={'format': 'pt', **meta})
    else:
        contents = nest_official(state)
        buffer = io.BytesIO()
        torch.save(contents, buffer)
        data = buffer.getvalue()
    expected = _flat(contents)

    def same_as_written(tmp: str) -> None:
        written = _flat(load_weights_file(tmp)[0])
        if set(written) != set(expected) or any(
            not written[k].equal(expected[k]) for k in expected
        ):
            raise CheckpointError(
                f'{path}: read back differs from what was written; nothing was replaced'
            )

    atomic_write_bytes(path, data, verify=same_as_written)


def _flat(contents: dict) -> dict[str, torch.Tensor]:
    """A file's tensors by one name each (the nested ``.bin`` flattened)."""
    flat = {}
    for key, value in contents.items():
        if isinstance(value, dict):
            flat.update({f'{key}.{k}': v for k, v in value.items()})
        else:
            flat[key] = value
    return flat
