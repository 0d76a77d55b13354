"""Which models a config loads, pointed at the workspace.

The tiny configs name folders under ``work_dirs/tiny_models/`` (what
``tools/make_tiny_models.py`` writes); the page writes the same folders,
with the same functions, into ``<workspace>/models/tiny_models/`` and passes
them as ``--cfg-options``. Other configs load their Hub ids unless a local
copy in the workspace is named.
"""

import functools
import os.path as osp

from . import kit
from .workspace import Workspace

__all__ = [
    'MODEL_KEYS',
    'is_tiny',
    'write_tiny_models',
    'model_options',
    'options_to_args',
]

TINY_PREFIX = 'work_dirs/tiny_models/'
# The config entries that name a model folder.
MODEL_KEYS = (
    'model.pretrained_model_name_or_path',
    'model.image_encoder.pretrained_model_name_or_path',
    'val_evaluator.clip_model',
    'test_evaluator.clip_model',
)


@functools.lru_cache(maxsize=64)
def _model_entries(config: str) -> tuple[tuple[str, str | None], ...]:
    """``(key, value)`` of :data:`MODEL_KEYS` in config ``config``."""
    cfg = kit.read_config(config)
    entries = []
    for key in MODEL_KEYS:
        value = cfg
        for part in key.split('.'):
            value = value.get(part) if value is not None else None
        entries.append((key, value))
    return tuple(entries)


def is_tiny(config: str) -> bool:
    """Whether ``config`` loads the tiny random families."""
    return any(
        isinstance(v, str) and v.startswith(TINY_PREFIX)
        for _, v in _model_entries(config)
    )


def _tiny_folders(ws: Workspace, config: str) -> dict[str, str]:
    """The workspace folders of a tiny config's models, by config key."""
    root = osp.join(ws.root, 'models', 'tiny_models')
    return {
        key: osp.join(root, value[len(TINY_PREFIX) :])
        for key, value in _model_entries(config)
        if isinstance(value, str) and value.startswith(TINY_PREFIX)
    }


def write_tiny_models(ws: Workspace, config: str, seed: int = 0) -> list[str]:
    """Write the tiny families a tiny config loads (those missing) into the
    workspace, as ``tools/make_tiny_models.py`` does; what was written."""
    from ..models.model_sources import disable_progress_bars
    from ..models.random_models import write_base_model, write_clip_judge

    disable_progress_bars()
    written = []
    out = ws.folder('models', 'tiny_models')
    for key, folder in _tiny_folders(ws, config).items():
        name = osp.relpath(folder, out).split(osp.sep)[0]
        if osp.isdir(osp.join(out, name)):
            continue
        if key.endswith('clip_model'):
            write_clip_judge(name, out, seed)
        elif key == 'model.pretrained_model_name_or_path':
            write_base_model(name, out, seed)
        else:
            continue
        written.append(ws.relative(osp.join(out, name)))
    return written


def model_options(
    ws: Workspace, config: str, base_model: str = '', image_encoder: str = ''
) -> dict[str, object]:
    """``--cfg-options`` that point ``config`` at its models in the workspace
    and at the kit's evaluation set.

    Args:
        ws: The workspace.
        config: A config name.
        base_model: A base-model folder in the workspace ('' = the config's).
        image_encoder: An image-encoder folder in the workspace ('' = the
            config's).
    """
    options: dict[str, object] = dict(_tiny_folders(ws, config))
    if base_model:
        options['model.pretrained_model_name_or_path'] = ws.resolve(
            base_model, must_exist=True
        )
    if image_encoder:
        options['model.image_encoder.pretrained_model_name_or_path'] = ws.resolve(
            image_encoder, must_exist=True
        )
        options['model.image_encoder.subfolder'] = None
    data = kit.eval_data_root()
    cfg = kit.read_config(config)
    for split in ('val', 'test'):  # those it has (the FaceID configs: none)
        if data and cfg.get(f'{split}_dataloader'):
            options[f'{split}_dataloader.dataset.data_root'] = data
    return options


def options_to_args(options: dict[str, object]) -> list[str]:
    """``['--cfg-options', 'KEY=VALUE', ...]`` (nothing for no options)."""
    if not options:
        return []
    return ['--cfg-options', *(f'{k}={v}' for k, v in options.items())]
