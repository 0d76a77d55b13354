"""Write files so that a kill or a full disk mid-write never leaves a
truncated file, and what was there before stays intact.

A file is written to a temporary file beside it (``.<stem>.tmp-<pid><ext>``,
so it keeps its extension and can be read back), flushed to disk, optionally
verified, and only then renamed over the target; the folder is synced after
the rename, so the new file is durable before anything that relies on it
(deleting an older checkpoint) happens. Temporaries that a killed process
left behind are found by :func:`stale_temporaries`.
"""

import contextlib
import os
import os.path as osp
import re
from collections.abc import Callable, Iterator

from .errors import StorageError

__all__ = [
    'atomic_path',
    'atomic_write_bytes',
    'stale_temporaries',
    'sync_folder',
    'safe_file_name',
]

_TEMPORARY = re.compile(r'^\..+\.tmp-(\d+)(\.[^.]*)?$')
_UNSAFE = re.compile(r'[^\w.-]+')


def safe_file_name(text: str, limit: int = 80) -> str:
    """``text`` (an id, a caption, a file's stem: data the user does not
    type as a path) as one file-name component that stays inside its
    folder: no separators, no leading dots, no control characters."""
    name = _UNSAFE.sub('_', str(text)).lstrip('._')[:limit].rstrip('_')
    return name or '_'


def sync_folder(folder: str) -> None:
    """Make renames in ``folder`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(
    path: str, verify: Callable[[str], None] | None = None
) -> Iterator[str]:
    """Yield a temporary path beside ``path``; when the block succeeds, sync
    it, call ``verify(tmp)`` (which raises if the file is wrong) and rename it
    over ``path``. On any failure the temporary file is removed and ``path``
    is left as it was; a failed write (full disk, no permission) raises
    :class:`StorageError`, one line."""
    folder = osp.dirname(osp.abspath(path))
    stem, ext = osp.splitext(osp.basename(path))
    tmp = osp.join(folder, f'.{stem}.tmp-{os.getpid()}{ext}')
    try:
        os.makedirs(folder, exist_ok=True)
        yield tmp
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
        sync_folder(folder)
    except OSError as err:
        before = (
            'the previous file is intact' if osp.exists(path) else 'nothing was written'
        )
        raise StorageError(
            f'{path}: could not be written ({err.strerror or err}); {before}'
        ) from None
    finally:
        if osp.lexists(tmp):
            os.remove(tmp)


def atomic_write_bytes(
    path: str, data: bytes, verify: Callable[[str], None] | None = None
) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, verify) as tmp, open(tmp, 'wb') as f:
        f.write(data)


def stale_temporaries(folder: str) -> list[str]:
    """The temporary files in ``folder`` whose writer is no longer running
    (killed mid-write); they can be as large as a checkpoint."""
    if not osp.isdir(folder):
        return []
    stale = []
    for name in sorted(os.listdir(folder)):
        match = _TEMPORARY.match(name)
        if match and not _running(int(match[1])):
            stale.append(osp.join(folder, name))
    return stale


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours are removed when their write ends
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
