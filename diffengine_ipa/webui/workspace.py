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

from ..errors import UserError

__all__ = ['Workspace', 'WorkspaceError']


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
        """Names of the runs (folders under ``runs/``), newest first."""
        runs = osp.join(self.root, 'runs')
        if not osp.isdir(runs):
            return []
        names = [n for n in os.listdir(runs) if osp.isdir(osp.join(runs, n))]
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
