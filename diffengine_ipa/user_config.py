"""Read a user's config file (:func:`load_user_config`), then take it through
:data:`CONFIG_STEPS`, one documented sequence in one order: input paths
resolved; unknown top-level keys and renamed fields refused (MMEngine
silently ignores them); the reference preprocessing linked to the image
encoder; the dataset's ``resolution`` given to its resizes and crops; the
held-out validation and ``validate=False`` switches; nested keys checked
against the classes they build.

A misspelt ``trian_cfg`` would otherwise train with the defaults. Known keys
are those ``Runner.from_cfg`` reads, plus the helpers our configs share
(pipelines, visualizer backends). Own helper variables may start with ``_``.
Configs are Python files and run as code when read: a syntax error, a missing
``_base_`` file or an exception in the file is one line naming it.
"""

import copy
import difflib
import os.path as osp
from typing import Any

from mmengine.config import Config

from .config_arguments import check_config_arguments
from .errors import UserError

__all__ = [
    'KNOWN_TOP_LEVEL_KEYS',
    'check_top_level_keys',
    'check_renamed_fields',
    'link_image_preprocessing',
    'fill_dataset_resolutions',
    'apply_validate_switch',
    'apply_held_out_validation',
    'CONFIG_STEPS',
    'prepare_config',
    'resolve_repo_paths',
    'read_config_file',
    'load_user_config',
]

RUNNER_KEYS = frozenset(
    {
        'model',
        'work_dir',
        'experiment_name',
        'launcher',
        'default_scope',
        'env_cfg',
        'randomness',
        'log_level',
        'log_processor',
        'visualizer',
        'default_hooks',
        'custom_hooks',
        'load_from',
        'resume',
        'data_preprocessor',
        'train_dataloader',
        'train_cfg',
        'optim_wrapper',
        'param_scheduler',
        'auto_scale_lr',
        'val_dataloader',
        'val_cfg',
        'val_evaluator',
        'test_dataloader',
        'test_cfg',
        'test_evaluator',
        'custom_imports',
        'model_wrapper_cfg',
        'compile',
        'find_unused_parameters',
        'sync_bn',
        # FlexibleRunner (FSDP, DeepSpeed)
        'runner_type',
        'strategy',
    }
)
HELPER_KEYS = frozenset(
    {
        'train_pipeline',
        'eval_pipeline',
        'val_pipeline',
        'test_pipeline',
        'vis_backends',
        # ours: engine/hardware.py, apply_validate_switch,
        # apply_held_out_validation
        'hardware',
        'validate',
        'val_split',
        'val_ann_file',
        'val_cases',
    }
)
KNOWN_TOP_LEVEL_KEYS = RUNNER_KEYS | HELPER_KEYS


def check_top_level_keys(cfg: Config | dict, source: str) -> None:
    """Raise one line naming the first unknown key and the closest known."""
    for key in cfg.keys():
        if key in KNOWN_TOP_LEVEL_KEYS or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, sorted(KNOWN_TOP_LEVEL_KEYS), 1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else 'MMEngine would ignore it; remove it, or start a helper '
            "variable's name with '_'"
        )
        raise UserError(f"{source}: unknown top-level key '{key}' ({hint})")


# Fields of earlier releases, and what replaced them.
RENAMED_MODEL_FIELDS = {
    'image_encoder_path': "model.image_encoder=dict(type='CLIPImageEncoder', "
    'pretrained_model_name_or_path=..., subfolder=...)',
    'image_encoder_subfolder': 'model.image_encoder.subfolder',
    'prompt_encoder': "model.family=dict(type='SD15' | 'SDXL' | 'SD3' | 'Flux')",
    'compile_unet': 'model.compile_denoiser',
}
RENAMED_TRANSFORMS = {
    'CLIPImageProcess': "dict(type='PreprocessReference'), which takes its "
    'settings from model.image_encoder (no size=)',
}
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _pipelines(cfg: Config) -> list[list]:
    """The transform lists of the config's datasets."""
    pipelines = []
    for name in DATALOADERS:
        dataset = (cfg.get(name) or {}).get('dataset') or {}
        if isinstance(dataset.get('pipeline'), list):
            pipelines.append(dataset['pipeline'])
    return pipelines


def check_renamed_fields(cfg: Config, source: str) -> None:
    """One line naming the field that replaced an old one."""
    model = cfg.get('model') or {}
    for old, new in RENAMED_MODEL_FIELDS.items():
        if old in model:
            raise UserError(f'{source}: model.{old} was replaced by {new}')
    for pipeline in _pipelines(cfg):
        for transform in pipeline:
            kind = transform.get('type')
            if kind in RENAMED_TRANSFORMS:
                raise UserError(
                    f'{source}: the {kind} transform was replaced '
                    f'by {RENAMED_TRANSFORMS[kind]}'
                )


def link_image_preprocessing(cfg: Config, source: str = '') -> None:
    """Give every ``PreprocessReference`` without an encoder the model's
    ``image_encoder``, after ``--cfg-options``: the reference is preprocessed
    as the configured encoder's own processor does, whatever encoder that is."""
    encoder = (cfg.get('model') or {}).get('image_encoder')
    if encoder is None:
        return
    for pipeline in _pipelines(cfg):
        for transform in pipeline:
            if transform.get('type') == 'PreprocessReference' and (
                transform.get('image_encoder') is None
            ):
                transform['image_encoder'] = copy.deepcopy(encoder)


VISUALIZATION_HOOKS = ('IPAdapterVisualizationHook',)


def fill_dataset_resolutions(cfg: Config, source: str = '') -> None:
    """Give each resize and crop without a size its dataset's
    ``resolution`` (the dataset does so too; here the loaded config shows
    the sizes to every tool and script that reads its pipeline)."""
    from .datasets.transforms.geometric import fill_resolution

    for name in DATALOADERS:
        dataset = (cfg.get(name) or {}).get('dataset') or {}
        if dataset.get('resolution') and isinstance(dataset.get('pipeline'), list):
            dataset['pipeline'] = fill_resolution(
                dataset['pipeline'], dataset['resolution']
            )


def apply_validate_switch(cfg: Config, source: str = '') -> None:
    """``validate=False``: no validation loop (MMEngine's would still run at
    the last epoch whatever ``val_interval`` says) and no sample images."""
    if cfg.get('validate', True):
        return
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.custom_hooks = [
        hook
        for hook in cfg.get('custom_hooks') or []
        if hook.get('type') not in VISUALIZATION_HOOKS
    ]


# What a held-out validation set takes over from the training set.
HELD_OUT_SOURCE_KEYS = _SOURCE_KEYS = (
    'data_root',
    'image_column',
    'text_column',
    'reference_column',
    'min_image_side',
    'index_cache',
)


def apply_held_out_validation(cfg: Config, source: str) -> None:
    """``val_split=0.1`` (a fraction of the training records, held out of
    training) or ``val_ann_file=PATH`` (a second set of records): validation
    generates the first ``val_cases`` (8) of them, captions as prompts,
    instead of the built-in evaluation set; the test set stays."""
    split, ann_file = cfg.get('val_split'), cfg.get('val_ann_file')
    if not split and not ann_file:
        return
    if split and ann_file:
        raise UserError(f'{source}: give val_split or val_ann_file, not both')
    train = cfg.train_dataloader.dataset
    val = dict(
        type='IPAdapterEvalDataset',
        caption_as_prompt=True,
        max_cases=cfg.get('val_cases', 8),
        scales=(1.0,),
        seeds=(0,),
        on_bad_record='skip',
        **{key: train[key] for key in _SOURCE_KEYS if key in train},
    )
    if split:
        train.val_split = split
        val.update(ann_file=train.ann_file, val_split=split, split='val')
    else:
        val.update(ann_file=ann_file, data_root=None)
    if cfg.get('val_dataloader'):
        val['pipeline'] = cfg.val_dataloader.dataset.get('pipeline')
        cfg.val_dataloader.dataset = val


# Fields naming inputs that the shipped configs give relative to the repo.
_INPUT_PATH_KEYS = (
    'pretrained_model_name_or_path',
    'clip_model',
    'ann_file',
    'data_root',
)


def resolve_repo_paths(cfg: Any, source: str) -> None:
    """Input paths the config gives relative to the repository (``data/``,
    ``work_dirs/tiny_models/``) found from any working directory: a relative
    path that does not exist here but does beside the config's
    ``configs/`` folder is made absolute. Paths that exist here, absolute
    paths and Hub ids are left alone."""
    folder = osp.dirname(osp.abspath(source))
    while folder != osp.dirname(folder) and osp.basename(folder) != 'configs':
        folder = osp.dirname(folder)
    if osp.basename(folder) != 'configs':
        return
    root = osp.dirname(folder)

    def visit(node: Any) -> None:
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, value in list(items):
            if (
                key in _INPUT_PATH_KEYS
                and isinstance(value, str)
                and value
                and not osp.isabs(value)
                and not osp.exists(value)
                and osp.exists(osp.join(root, value))
            ):
                node[key] = osp.join(root, value)
            else:
                visit(value)

    visit(cfg._cfg_dict if isinstance(cfg, Config) else cfg)


# What a loaded config goes through, in this order (prepare_config). Each
# step reads the config as the steps before it left it:
CONFIG_STEPS = (
    # paths first: every later step, and every check, sees the real paths
    (resolve_repo_paths, 'relative input paths found from any directory'),
    # refuse before changing anything: the errors name the user's own file
    (check_top_level_keys, 'unknown top-level keys are errors'),
    (check_renamed_fields, 'renamed model fields and transforms are errors'),
    # fill in what the datasets' pipelines leave to the model and the dataset
    (link_image_preprocessing, "references preprocessed as the encoder's own"),
    (fill_dataset_resolutions, "sizes of resizes and crops from 'resolution'"),
    # the switches: a held-out set replaces the validation set, then
    # validate=False may drop validation altogether
    (apply_held_out_validation, 'val_split / val_ann_file'),
    (apply_validate_switch, 'validate=False'),
    # last: the nested keys of the final config against their classes
    (check_config_arguments, 'nested keys against the classes they build'),
)


def prepare_config(cfg: Config, source: str) -> Config:
    """Check a loaded config, link its preprocessing and apply its switches
    (what every tool does before building anything): :data:`CONFIG_STEPS`,
    in order."""
    for step, _ in CONFIG_STEPS:
        step(cfg, source)
    return cfg


def read_config_file(path: str) -> Config:
    """``Config.fromfile`` with what can go wrong in a config file (it is
    Python, run as code) as one line."""
    if not osp.isfile(path):
        raise UserError(f'{path}: no such config file')
    try:
        return Config.fromfile(path)
    except SyntaxError as err:
        where = err.filename if err.filename and err.filename != '<unknown>' else path
        raise UserError(
            f'{where}: syntax error in the config: {err.msg} (line {err.lineno})'
        ) from None
    except FileNotFoundError as err:
        raise UserError(
            f'{path}: a _base_ file of the config does not exist: {err.filename or err}'
        ) from None
    except (
        ImportError,
        NameError,
        TypeError,
        ValueError,
        KeyError,
        AttributeError,
        AssertionError,
    ) as err:
        raise UserError(
            f'{path}: the config failed to run: {type(err).__name__}: {err}'
        ) from None


def load_user_config(path: str, cfg_options: dict | None = None) -> Config:
    """The config file with ``--cfg-options`` merged, checked and linked."""
    cfg = read_config_file(path)
    if cfg_options:
        # A mistake on the command line is blamed on the command line.
        check_top_level_keys(
            dict.fromkeys(key.split('.', 1)[0] for key in cfg_options), '--cfg-options'
        )
        check_top_level_keys(cfg, path)
        cfg.merge_from_dict(cfg_options)
    return prepare_config(cfg, path)
