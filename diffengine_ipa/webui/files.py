"""The Files tab, and the adapter lists of the other tabs: checkpoints and
adapter files in the workspace, and what ``tools/convert.py CKPT`` and
``tools/convert.py --info FILE`` do, run in the page's process (the same API
calls, the same one-line errors, without a tool's start of several seconds).
"""

import os.path as osp
from typing import Callable

from ..errors import UserError, error_line
from .train_options import read_run_info
from .workspace import Workspace

__all__ = [
    'checkpoints',
    'adapter_files',
    'adapters',
    'convert',
    'info',
    'run_of',
    'run_models',
]

ADAPTER_PATTERNS = (
    'runs/**/*.safetensors',
    'runs/**/*.bin',
    'adapters/**/*.safetensors',
    'adapters/**/*.bin',
)


def checkpoints(ws: Workspace) -> list[str]:
    """Training checkpoints (``runs/<run>/iter_N.pth``), newest first."""
    return ws.find('runs/*/iter_*.pth', 'runs/*/epoch_*.pth')


def adapter_files(ws: Workspace) -> list[str]:
    """Converted or published adapter files, newest first."""
    return ws.find(*ADAPTER_PATTERNS)


def adapters(ws: Workspace) -> list[str]:
    """Everything an adapter can be loaded from: files, then checkpoints."""
    return adapter_files(ws) + checkpoints(ws)


def run_of(ws: Workspace, path: str) -> str | None:
    """The run a path belongs to (``runs/<run>/...``), if any."""
    parts = ws.relative(path).split(osp.sep)
    return parts[1] if len(parts) > 2 and parts[0] == 'runs' else None


def run_models(ws: Workspace, path: str) -> dict | None:
    """The config, model folders and face embedder of the run that made
    ``path``, if the page started it: ``{'config', 'base_model',
    'image_encoder', 'face_embedder'}``."""
    run = run_of(ws, path)
    try:
        info = read_run_info(ws, run) if run else None
    except UserError:  # a damaged record: the config's own models
        info = None
    if not info:
        return None
    settings = info['settings']
    keys = ('config', 'base_model', 'image_encoder', 'face_embedder')
    return {k: settings.get(k, '') for k in keys}


def _tool_output(action: Callable[[], str]) -> tuple[str, bool]:
    """What ``tools/convert.py`` prints for ``action`` (its result, or its
    one error line ``error: ...``), and whether it succeeded."""
    try:
        return action(), True
    except (UserError, OSError) as err:
        line = error_line(err)
        if line is None:
            raise
        return line, False


def convert(
    ws: Workspace, checkpoint: str, fmt: str = 'safetensors', dtype: str = ''
) -> tuple[str, str | None]:
    """What ``tools/convert.py CKPT --out <folder>/ip_adapter_<ckpt>.<fmt>``
    does (for a work dir, its last checkpoint to ``ip_adapter.<fmt>`` in it),
    in this process: the tool's output, and the written file (None when it
    failed)."""
    if fmt not in ('safetensors', 'bin'):
        raise UserError(f'format {fmt!r}: safetensors or bin')
    source = ws.resolve(checkpoint, must_exist=True)
    stem = osp.splitext(osp.basename(source))[0]
    folder = source if osp.isdir(source) else osp.dirname(source)
    if osp.isdir(source) or stem.startswith('ip_adapter'):
        stem = stem if osp.isfile(source) else 'ip_adapter'
    else:
        stem = f'ip_adapter_{stem}'
    out = osp.join(folder, f'{stem}.{fmt}')
    from ..apis.convert import convert_checkpoint

    output, ok = _tool_output(
        lambda: convert_checkpoint(source, out, fmt, dtype or None)
    )
    return output, (out if ok else None)


def info(ws: Workspace, path: str) -> str:
    """What ``tools/convert.py --info FILE`` prints."""
    from ..apis.convert import describe_adapter_file

    source = ws.resolve(path, must_exist=True)
    return _tool_output(lambda: describe_adapter_file(source))[0]
