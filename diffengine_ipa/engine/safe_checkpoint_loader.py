"""The one place where MMEngine's checkpoint loading is replaced.

MMEngine reads ``--resume`` and ``load_from`` files with a bare
``torch.load``: a missing file is a ``FileNotFoundError`` traceback, and a
pickle that would run code fails with torch's long ``UnpicklingError``.
Registered for local paths (MMEngine's own extension point,
``CheckpointLoader.register_scheme``), this loader reads them as every other
tool of the kit reads user files (:func:`load_weights_file`: safetensors, or
``torch.load(weights_only=True)``), so those mistakes are one line. Our
checkpoints are plain data (see :mod:`.plain_checkpoint`), so they load.
"""

from typing import Any

from mmengine.runner.checkpoint import CheckpointLoader

from ..official_format import load_weights_file

__all__ = ['load_from_safe_local']


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_safe_local(filename: str, map_location: Any = None) -> dict:
    """A local checkpoint, read without running code."""
    contents, _ = load_weights_file(filename, map_location or 'cpu')
    return contents
