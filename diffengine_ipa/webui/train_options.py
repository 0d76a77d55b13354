"""The Train tab's knobs as the normal training command line:
``python tools/train.py CONFIG --work-dir runs/<name> [--amp] [--resume]
--cfg-options ...``.
"""

import json
import os.path as osp
import time
from dataclasses import asdict, dataclass

from ..errors import DatasetError, UserError
from ..fileio import atomic_write_bytes
from . import kit
from .base_models import model_options, options_to_args
from .data import check_dataset, faces_file, index_cache
from .family_choices import config_faceid
from .workspace import Workspace

__all__ = [
    'TrainSettings',
    'PRECISIONS',
    'train_options',
    'train_command',
    'config_defaults',
    'write_run_info',
    'read_run_info',
    'RUN_INFO',
]

PRECISIONS = ('fp32', 'amp')  # amp: fp16 with loss scaling on CUDA, bf16 on CPU
RUN_INFO = 'webui_run.json'


@dataclass
class TrainSettings:
    """What the Train tab sets; ``None`` or '' keeps the config's value.

    Args:
        config: A config name from ``configs/ip_adapter/``.
        dataset: The dataset folder in the workspace (its ``data.json``).
        epochs: ``train_cfg.max_epochs``.
        lr: ``optim_wrapper.optimizer.lr``.
        resolution: The dataset's ``resolution`` (every resize and crop).
        batch_size: ``train_dataloader.batch_size``.
        precision: ``'fp32'`` or ``'amp'`` (``--amp``).
        sample_every: Validate and render sample images every N epochs.
        checkpoint_every: Save a checkpoint every N iterations.
        base_model: A base-model folder in the workspace.
        image_encoder: An image-encoder folder in the workspace.
        face_embedder: FaceID: the face embedder the dataset's faces are
            found with ('' = insightface's).
    """

    config: str
    dataset: str = ''
    epochs: int | None = None
    lr: float | None = None
    resolution: int | None = None
    batch_size: int | None = None
    precision: str = 'fp32'
    sample_every: int | None = None
    checkpoint_every: int | None = None
    base_model: str = ''
    image_encoder: str = ''
    face_embedder: str = ''


def _positive(value, name: str, kind=int):
    if value in (None, ''):
        return None
    value = kind(value)
    if value <= 0:
        raise UserError(f'{name} must be positive, got {value}')
    return value


def train_options(ws: Workspace, settings: TrainSettings) -> dict[str, object]:
    """The ``--cfg-options`` of a training run."""
    cfg = kit.read_config(settings.config)
    options = model_options(
        ws, settings.config, settings.base_model, settings.image_encoder
    )
    if settings.dataset:
        path = check_dataset(ws, settings.dataset)
        if config_faceid(settings.config):  # the records with their faces
            path = faces_file(ws, settings.dataset)
            if not osp.isfile(path):
                raise DatasetError(
                    f'{settings.dataset}: no face records yet '
                    f'({ws.relative(path)}: Start prepares them)'
                )
        options['train_dataloader.dataset.ann_file'] = path
        options['train_dataloader.dataset.index_cache'] = index_cache(ws)
    values = {
        'train_cfg.max_epochs': _positive(settings.epochs, 'epochs'),
        'optim_wrapper.optimizer.lr': _positive(settings.lr, 'lr', float),
        'train_dataloader.batch_size': _positive(settings.batch_size, 'batch'),
        'default_hooks.checkpoint.interval': _positive(
            settings.checkpoint_every, 'checkpoint interval'
        ),
        'default_hooks.logger.interval': 1,  # a point of the curve per step
    }
    values['train_dataloader.dataset.resolution'] = _positive(
        settings.resolution, 'resolution'
    )  # the one knob of every crop
    sample_every = _positive(settings.sample_every, 'sample interval')
    if sample_every:
        values['train_cfg.val_interval'] = sample_every
        for i, hook in enumerate(cfg.get('custom_hooks', [])):
            if hook['type'] == 'IPAdapterVisualizationHook':
                values[f'custom_hooks.{i}.interval'] = sample_every
    options.update({k: v for k, v in values.items() if v is not None})
    return options


def train_command(
    ws: Workspace, run: str, settings: TrainSettings, resume: bool = False
) -> list[str]:
    """``python tools/train.py CONFIG --work-dir runs/<run> ...``."""
    if settings.precision not in PRECISIONS:
        raise UserError(
            f'precision {settings.precision!r}: one of {", ".join(PRECISIONS)}'
        )
    args = [kit.config_path(settings.config), '--work-dir', ws.run_dir(run)]
    if settings.precision == 'amp':
        args.append('--amp')
    if resume:
        args.append('--resume')
    args += options_to_args(train_options(ws, settings))
    return kit.tool_command('train', *args)


def write_run_info(
    ws: Workspace, run: str, settings: TrainSettings, command: list[str]
) -> None:
    """Record the run's settings beside its checkpoints (for Resume, and for
    generating and evaluating with the run's config and models)."""
    epochs = settings.epochs or kit.read_config(settings.config).train_cfg.get(
        'max_epochs'
    )
    info = dict(
        settings=asdict(settings),
        max_epochs=epochs,
        command=command,
        started=time.time(),
    )
    atomic_write_bytes(
        osp.join(ws.run_dir(run), RUN_INFO), json.dumps(info, indent=2).encode()
    )


def read_run_info(ws: Workspace, run: str) -> dict | None:
    """What :func:`write_run_info` recorded, if the page started the run."""
    path = osp.join(ws.run_dir(run), RUN_INFO)
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            info = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        info = err
    if not isinstance(info, dict) or not isinstance(info.get('settings'), dict):
        raise UserError(
            f'runs/{run}/{RUN_INFO}: damaged (not the JSON the page writes); '
            'give the settings and press Resume, or delete the file'
        )
    return info


def config_defaults(config: str) -> dict[str, object]:
    """The knobs' values in config ``config`` (what the Train tab shows)."""
    cfg = kit.read_config(config)
    hooks = [
        hook
        for hook in cfg.get('custom_hooks', [])
        if hook['type'] == 'IPAdapterVisualizationHook'
    ]
    return dict(
        epochs=cfg.train_cfg.get('max_epochs'),
        lr=cfg.optim_wrapper.optimizer.get('lr'),
        resolution=cfg.train_dataloader.dataset.get('resolution'),
        batch_size=cfg.train_dataloader.get('batch_size'),
        sample_every=hooks[0].get('interval') if hooks else None,
        checkpoint_every=cfg.default_hooks.checkpoint.get('interval'),
    )
