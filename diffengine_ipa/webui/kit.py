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
    'run_tool',
]


def config_names() -> list[str]:
    """Every config in ``configs/ip_adapter/``, by file name."""
    folder = kit_folder('configs')
    if folder is None:
        return []
    folder = osp.join(folder, 'ip_adapter')
    return sorted(n for n in os.listdir(folder) if n.endswith('.py'))


def config_path(name: str) -> str:
    """The file of config ``name`` (a file name from :func:`config_names`)."""
    if name not in config_names():
        raise UserError(f'{name!r}: not a config of configs/ip_adapter/')
    return osp.join(kit_folder('configs'), 'ip_adapter', name)


@functools.lru_cache(maxsize=64)
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


def run_tool(name: str, *args: str, cwd: str) -> subprocess.CompletedProcess:
    """Run ``tools/<name>.py`` to the end; its output as text."""
    return subprocess.run(
        tool_command(name, *args),
        cwd=cwd,
        env=tool_env(),
        capture_output=True,
        text=True,
    )
