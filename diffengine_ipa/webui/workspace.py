"""The web UI's workspace: the one folder whose files the page reads and
writes.

Every path a user types or uploads goes through :meth:`Workspace.resolve`,
which refuses ``../``, absolute paths elsewhere and symbolic links that
lead out. The layout inside is a convention, not a requirement::

    datasets/<name>/      images and data.json (the kit's annotation file)
    runs/<name>/          training work dirs (checkpoints, logs, evaluations)
    adapters/             converted or published adapter files put here
    models/tiny_models/   the tiny random families, when written
    outputs/generate/     generated images
"""

import os
import os.path as osp
import re

from ..errors import UserError

__all__ = ['Workspace', 'WorkspaceError', 'safe_upload_name']


class WorkspaceError(UserError):
    """A path that would leave the workspace, or a name that is not one."""


class Workspace:
    """A folder on disk; paths inside it, given relative or absolute.

    Args:
        root: The folder (created when missing).
    """

    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        self.root = osp.realpath(root)

    def resolve(self, path: str, must_exist: bool = False) -> str:
        """The absolute, symlink-free path of ``path`` (relative to the
        workspace, or absolute), if it stays inside the workspace.

        Raises:
            WorkspaceError: ``path`` is empty, leaves the workspace, or (with
                ``must_exist``) does not exist.
        """
        if not path or not str(path).strip():
            raise WorkspaceError('no path given')
        if '\x00' in str(path):
            raise WorkspaceError(f'{str(path)!r}: a path cannot hold a NUL byte')
        real = osp.realpath(osp.join(self.root, str(path).strip()))
        if osp.commonpath([self.root, real]) != self.root:
            raise WorkspaceError(
                f'{path}: outside the workspace {self.root} (give a path inside it)'
            )
        if must_exist and not osp.exists(real):
            raise WorkspaceError(f'{path}: no such file or folder in the workspace')
        return real

    def relative(self, path: str) -> str:
        """``path`` (inside the workspace) relative to its root."""
        return osp.relpath(self.resolve(path), self.root)

    def folder(self, *parts: str) -> str:
        """A folder inside the workspace, created when missing."""
        path = self.resolve(osp.join(*parts))
        os.makedirs(path, exist_ok=True)
        return path

    def run_dir(self, name: str) -> str:
        """The work dir of run ``name``: ``runs/<name>``."""
        return self.resolve(osp.join('runs', check_name(name)))

    def runs(self) -> list[str]:
        """Names of the runs (folders under ``runs/`` with a run's name),
        newest first."""
        runs = osp.join(self.root, 'runs')
        if not osp.isdir(runs):
            return []
        names = [
            n for n in os.listdir(runs) if osp.isdir(osp.join(runs, n)) and _is_name(n)
        ]
        return sorted(names, key=lambda n: -osp.getmtime(osp.join(runs, n)))

    def find(self, *patterns: str, exclude: tuple[str, ...] = ()) -> list[str]:
        """Files under the workspace matching glob ``patterns`` (relative to
        the root, ``**`` allowed), as relative paths, newest first; none
        under a top-level folder in ``exclude`` or a hidden folder."""
        import glob

        found = set()
        for pattern in patterns:
            for path in glob.glob(osp.join(self.root, pattern), recursive=True):
                rel = osp.relpath(path, self.root)
                top = rel.split(os.sep)[0]
                if (
                    osp.isfile(path)
                    and top not in exclude
                    and not any(p.startswith('.') for p in rel.split(os.sep))
                ):
                    found.add(rel)
        return sorted(found, key=lambda r: -osp.getmtime(osp.join(self.root, r)))


def check_name(name: str) -> str:
    """A run or dataset name: letters, digits, ``-``, ``_`` and ``.``."""
    name = (name or '').strip()
    allowed = set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.')
    if not name or name.startswith('.') or set(name) - allowed:
        raise WorkspaceError(
            f'{name!r}: a name is letters, digits, "-", "_" and "." (not first)'
        )
    return name


def _is_name(name: str) -> bool:
    try:
        return check_name(name) == name
    except WorkspaceError:
        return False


_RESERVED = {'CON', 'PRN', 'AUX', 'NUL'} | {
    f'{kind}{n}' for kind in ('COM', 'LPT') for n in range(1, 10)
}  # names Windows cannot create, whatever the extension
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


def safe_upload_name(name: str, default: str = 'upload') -> str:
    """An uploaded file's name as one safe file name: the last part of any
    path (``/`` or ``\\``), without control characters or NUL bytes, the
    characters Windows refuses, leading dots (``..``, hidden files) and
    trailing dots or spaces; a reserved name (``CON``, ``nul.png``) gets a
    ``_`` before it; at most 200 UTF-8 bytes, its extension kept."""
    name = re.split(r'[\\/]', str(name))[-1]
    name = name.encode('utf-8', 'replace').decode('utf-8')  # lone surrogates
    name = _UNSAFE.sub('_', name).strip().lstrip('.').rstrip('. ')
    stem, ext = os.path.splitext(name)
    if not stem:
        stem = default
    if stem.split('.')[0].upper() in _RESERVED:
        stem = '_' + stem
    while len((stem + ext).encode('utf-8')) > 200 and len(stem) > 1:
        stem = stem[:-1]
    if len((stem + ext).encode('utf-8')) > 200:
        ext = ext[:16]
    return stem + ext
