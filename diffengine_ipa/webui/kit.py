"""Where the kit's own tools, configs and evaluation set are, and how the page
runs a tool: the same ``python tools/<name>.py`` a user types.

They are found by :func:`diffengine_ipa.kit_files.kit_folder`: beside the
package in a checkout, under ``diffengine_ipa/.mim/`` when installed.
"""

import functools
import os
import os.path as osp
import subprocess
import sys
from typing import IO, Any

from ..errors import UserError
from ..kit_files import PACKAGE_PARENT, kit_folder

__all__ = [
    'PACKAGE_PARENT',
    'kit_folder',
    'config_names',
    'config_path',
    'read_config',
    'eval_data_root',
    'tool_command',
    'tool_env',
    'start_tool',
]


def _config_files() -> dict[str, str]:
    """Every leaf config by file name: ``configs/ip_adapter/`` first, then
    any other folder of ``configs/`` but ``_base_`` (names are unique across
    the kit, as mim finds configs by name)."""
    root = kit_folder('configs')
    if root is None:
        return {}
    folders = sorted(
        (n != 'ip_adapter', n)
        for n in os.listdir(root)
        if n != '_base_' and osp.isdir(osp.join(root, n))
    )
    found: dict[str, str] = {}
    for _, folder in folders:
        for name in sorted(os.listdir(osp.join(root, folder))):
            if name.endswith('.py') and not name.startswith('_'):
                found.setdefault(name, osp.join(root, folder, name))
    return found


def config_names() -> list[str]:
    """Every shipped leaf config, by file name."""
    return sorted(_config_files())


def config_path(name: str) -> str:
    """The file of config ``name`` (a file name from :func:`config_names`)."""
    path = _config_files().get(name)
    if path is None:
        raise UserError(f'{name!r}: not a config of the kit (configs/)')
    return path


@functools.lru_cache(maxsize=256)
def read_config(name: str):
    """Config ``name`` as its file says (shared: read it, don't change it)."""
    from mmengine.config import Config

    return Config.fromfile(config_path(name))


def eval_data_root() -> str | None:
    """The folder holding ``eval_set/`` (the evaluation cases), if any."""
    root = osp.join(PACKAGE_PARENT, 'data')
    return root if osp.isfile(osp.join(root, 'eval_set', 'cases.json')) else None


def tool_command(name: str, *args: str) -> list[str]:
    """``[python, tools/<name>.py, *args]``."""
    folder = kit_folder('tools')
    if folder is None:
        raise UserError("the kit's tools/ folder was not found")
    return [sys.executable, osp.join(folder, f'{name}.py'), *map(str, args)]


def tool_env() -> dict[str, str]:
    """The environment of a tool: this one, with the package the page runs
    first on the path (so both run the same code) and no progress bars."""
    path = os.pathsep.join(
        p for p in (PACKAGE_PARENT, os.environ.get('PYTHONPATH')) if p
    )
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED='1', TQDM_DISABLE='1')


def start_tool(
    command: list[str], cwd: str, log: IO[bytes], **options: Any
) -> subprocess.Popen:
    """Start a tool's ``command`` in ``cwd`` with :func:`tool_env`, its
    output and errors to ``log``, no input; ``options``: more of ``Popen``'s."""
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=tool_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        **options,
    )
