"""MMEngine's local file backend, with atomic ``put``.

Registered as ``atomic_local``; the runtime config points the
``CheckpointHook`` at it (``backend_args=dict(backend='atomic_local')``), so a
kill while a checkpoint is written leaves the previous file intact.
"""

from pathlib import Path

from mmengine.fileio import LocalBackend, register_backend

from ..fileio import atomic_write_bytes

__all__ = ['AtomicLocalBackend']


@register_backend('atomic_local', force=True)
class AtomicLocalBackend(LocalBackend):
    """Local storage whose ``put`` writes a temporary file and renames it."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        atomic_write_bytes(str(filepath), obj)
