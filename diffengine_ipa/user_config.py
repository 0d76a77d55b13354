"""Read a user's config file: one-line errors, and unknown top-level keys
refused (MMEngine silently ignores them).

A misspelt ``trian_cfg`` would otherwise train with the defaults. Known keys
are those ``Runner.from_cfg`` reads, plus the helpers our configs share
(pipelines, visualizer backends). Own helper variables may start with ``_``.
"""
import difflib
import os.path as osp

from mmengine.config import Config

from .errors import UserError

__all__ = ['KNOWN_TOP_LEVEL_KEYS', 'check_top_level_keys', 'load_user_config']

RUNNER_KEYS = frozenset({
    'model', 'work_dir', 'experiment_name', 'launcher', 'default_scope',
    'env_cfg', 'randomness', 'log_level', 'log_processor', 'visualizer',
    'default_hooks', 'custom_hooks', 'load_from', 'resume', 'data_preprocessor',
    'train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
    'auto_scale_lr', 'val_dataloader', 'val_cfg', 'val_evaluator',
    'test_dataloader', 'test_cfg', 'test_evaluator', 'custom_imports',
    'model_wrapper_cfg', 'compile', 'find_unused_parameters', 'sync_bn',
    # FlexibleRunner (FSDP, DeepSpeed)
    'runner_type', 'strategy'})
HELPER_KEYS = frozenset({'train_pipeline', 'eval_pipeline', 'val_pipeline',
                         'test_pipeline', 'vis_backends'})
KNOWN_TOP_LEVEL_KEYS = RUNNER_KEYS | HELPER_KEYS


def check_top_level_keys(cfg: Config, source: str) -> None:
    """Raise one line naming the first unknown key and the closest known."""
    for key in cfg.keys():
        if key in KNOWN_TOP_LEVEL_KEYS or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, sorted(KNOWN_TOP_LEVEL_KEYS), 1)
        hint = (f"did you mean '{close[0]}'?" if close else
                'MMEngine would ignore it; remove it, or start a helper '
                "variable's name with '_'")
        raise UserError(f"{source}: unknown top-level key '{key}' ({hint})")


def load_user_config(path: str, cfg_options: dict | None = None) -> Config:
    """The config file with ``--cfg-options`` merged, its keys checked."""
    if not osp.isfile(path):
        raise UserError(f'{path}: no such config file')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_top_level_keys(cfg, path)
    return cfg
