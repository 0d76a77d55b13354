"""Check a config's nested entries against the classes they build.

MMEngine passes an entry's keys to its class as keyword arguments, so a
misspelt ``model.text_drop_ratee`` fails deep inside a build (after the models
loaded) and a misspelt optional key of a class that takes ``**kwargs`` is
silently ignored. Here every entry with a ``type`` (and the dataloaders,
``randomness``, ``env_cfg`` ...) is checked against the ``__init__`` signature
of the class its registry resolves, before anything is built: one line names
the key and the closest valid one, or the required argument that is missing.
"""

import difflib
import importlib
import inspect
from collections.abc import Iterator
from typing import Any

from .errors import UserError

__all__ = ['check_config_arguments', 'accepted_arguments']

# Where entries live: (path, registry, default type, keys the builder reads
# itself, arguments the builder passes, whether to require the rest).
# ``*`` is every key of a dict, ``[]`` every item of a list.
_ENTRIES = (
    ('model', 'MODELS', None, (), (), True),
    ('model.family', 'MODELS', 'SD15', (), ('pretrained_model_name_or_path',), True),
    ('model.image_encoder', 'MODELS', None, (), (), True),
    (
        'model.image_projection',
        'MODELS',
        None,
        (),
        ('image_embed_dim', 'cross_attention_dim'),
        True,
    ),
    ('model.data_preprocessor', 'MODELS', None, (), (), True),
    # dtype / loss_scale: --amp picks the wrapper that takes them, and
    # hardware.check_precision_options names the flag when none does.
    (
        'optim_wrapper',
        'OPTIM_WRAPPERS',
        'OptimWrapper',
        ('optimizer', 'constructor', 'paramwise_cfg', 'dtype', 'loss_scale'),
        (),
        False,
    ),
    ('optim_wrapper.optimizer', 'OPTIMIZERS', None, (), ('params',), True),
    (
        'param_scheduler',
        'PARAM_SCHEDULERS',
        None,
        ('convert_to_iter_based',),
        ('optimizer',),
        True,
    ),
    (
        'param_scheduler[]',
        'PARAM_SCHEDULERS',
        None,
        ('convert_to_iter_based',),
        ('optimizer',),
        True,
    ),
    ('default_hooks.*', 'HOOKS', None, ('priority',), (), True),
    ('custom_hooks[]', 'HOOKS', None, ('priority',), (), True),
    ('train_cfg', 'LOOPS', None, (), ('runner', 'dataloader'), False),
    ('val_cfg', 'LOOPS', 'ValLoop', (), ('runner', 'dataloader', 'evaluator'), False),
    ('test_cfg', 'LOOPS', 'TestLoop', (), ('runner', 'dataloader', 'evaluator'), False),
    ('*_dataloader.dataset', 'DATASETS', None, (), (), True),
    ('*_dataloader.sampler', 'DATA_SAMPLERS', None, (), ('dataset', 'seed'), True),
    (
        '*_dataloader.batch_sampler',
        'DATA_SAMPLERS',
        None,
        (),
        ('sampler', 'batch_size'),
        True,
    ),
    ('*_dataloader.collate_fn', 'FUNCTIONS', None, (), ('data_batch',), True),
    ('*_dataloader.dataset.pipeline[]', 'TRANSFORMS', None, (), (), True),
    ('val_evaluator', 'METRICS', None, (), (), False),
    ('val_evaluator[]', 'METRICS', None, (), (), False),
    ('test_evaluator', 'METRICS', None, (), (), False),
    ('test_evaluator[]', 'METRICS', None, (), (), False),
    ('visualizer', 'VISUALIZERS', None, (), (), False),
    ('visualizer.vis_backends[]', 'VISBACKENDS', None, (), ('save_dir',), False),
    ('log_processor', 'LOG_PROCESSORS', 'LogProcessor', (), (), False),
    ('model_wrapper_cfg', 'MODEL_WRAPPERS', None, (), ('module',), False),
)
# Plain dicts that the runner reads key by key.
_DATALOADER_KEYS = {
    'dataset',
    'batch_size',
    'shuffle',
    'sampler',
    'batch_sampler',
    'num_workers',
    'collate_fn',
    'pin_memory',
    'drop_last',
    'timeout',
    'worker_init_fn',
    'multiprocessing_context',
    'generator',
    'prefetch_factor',
    'persistent_workers',
    'pin_memory_device',
    'in_order',
    'num_batch_per_epoch',
}
_FIXED = {
    '*_dataloader': _DATALOADER_KEYS,
    'randomness': {'seed', 'deterministic', 'diff_rank_seed'},
    'env_cfg': {'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'},
    'auto_scale_lr': {'enable', 'base_batch_size'},
}
_LOOP_BY_EPOCH = {True: 'EpochBasedTrainLoop', False: 'IterBasedTrainLoop'}


def _entries(cfg: Any, path: str) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of every entry the pattern ``path`` matches."""
    node_items = [('', cfg)]
    for part in path.split('.'):
        found = []
        many = part.endswith('[]')
        key = part[:-2] if many else part
        for name, node in node_items:
            if not isinstance(node, dict):
                continue
            keys = (
                [k for k in node if k.endswith(key[1:])]
                if key.startswith('*')
                else [key]
                if key in node
                else []
            )
            for k in keys:
                child, child_name = node[k], f'{name}.{k}'.lstrip('.')
                if many and isinstance(child, (list, tuple)):
                    found += [
                        (f'{child_name}.{i}', item) for i, item in enumerate(child)
                    ]
                elif not many:
                    found.append((child_name, child))
        node_items = found
    return iter(node_items)


def accepted_arguments(target: Any) -> set[str] | None:
    """The keyword arguments ``target`` (a class or function) accepts;
    ``None`` when it takes any (``**kwargs`` it keeps for itself)."""
    if not isinstance(target, type):
        params = inspect.signature(target).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return {p.name for p in params if p.kind is not p.VAR_POSITIONAL}
    names: set[str] = set()
    mro = target.__mro__
    for index, klass in enumerate(mro):
        if klass is object:
            return names
        if '__init__' not in vars(klass):
            continue
        try:
            params = list(inspect.signature(klass.__init__).parameters.values())
        except (TypeError, ValueError):  # a C type: cannot tell
            return None
        names |= {
            p.name
            for p in params[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
        if all('__init__' not in vars(k) for k in mro[index + 1 : -1]):
            return None  # **kwargs that no base class takes: its own
    return names


def _forwarded(target: Any) -> set[str] | None:
    """What a class that keeps ``**kwargs`` hands them to, where MMEngine
    documents it: ``CheckpointHook`` passes them to
    ``Runner.save_checkpoint``."""
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import Runner

    if not (isinstance(target, type) and issubclass(target, CheckpointHook)):
        return None
    named = {
        name
        for klass in target.__mro__
        if '__init__' in vars(klass)
        for name in inspect.signature(klass.__init__).parameters
    }
    return (named | set(inspect.signature(Runner.save_checkpoint).parameters)) - {
        'self',
        'args',
        'kwargs',
    }


def _required(target: Any) -> list[str]:
    init = target.__init__ if isinstance(target, type) else target
    params = list(inspect.signature(init).parameters.values())
    if isinstance(target, type):
        params = params[1:]
    return [
        p.name
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _close(key: str, options: set[str]) -> str:
    match = difflib.get_close_matches(key, sorted(options), 1)
    return f" (did you mean '{match[0]}'?)" if match else ''


def _resolve(registry_name: str, kind: Any, where: str, source: str) -> Any:
    if not isinstance(kind, str):
        return kind if callable(kind) else None
    registry = getattr(
        importlib.import_module('diffengine_ipa.registry'), registry_name
    )
    try:
        found = registry.get(kind)
    except (KeyError, ImportError):
        found = None
    if found is None and '.' not in kind:
        names = set(registry.module_dict) | set(registry.parent.module_dict)
        raise UserError(
            f"{source}: {where}.type '{kind}' is not a registered "
            f'{registry_name.lower()} entry{_close(kind, names)}'
        )
    return found


def _check_entry(entry: dict, where: str, spec: tuple, source: str) -> None:
    _, registry, default, extra, provided, require = spec
    kind = entry.get('type', default)
    if where == 'train_cfg' and kind is None:
        kind = _LOOP_BY_EPOCH[bool(entry.get('by_epoch', True))]
        extra = (*extra, 'by_epoch')
    if kind is None:
        return
    target = _resolve(registry, kind, where, source)
    if target is None:
        return
    accepted = accepted_arguments(target)
    if accepted is None:
        accepted = _forwarded(target)
    name = getattr(target, '__name__', str(kind))
    if accepted is not None:
        valid = accepted | set(extra) | {'type'}
        for key in entry:
            if key not in valid:
                raise UserError(
                    f'{source}: {where}.{key} is not an argument '
                    f'of {name}{_close(key, valid - {"type"})}'
                )
    if require:
        for key in _required(target):
            if key not in entry and key not in provided:
                raise UserError(
                    f'{source}: {where} needs {key} (a required argument of {name})'
                )


def check_config_arguments(cfg: Any, source: str) -> None:
    """Raise one line at the first nested key no class takes, or the first
    required argument missing."""
    import mmengine.dataset  # noqa: F401 - register MMEngine's classes
    import mmengine.optim  # noqa: F401
    import mmengine.runner  # noqa: F401
    import mmengine.visualization  # noqa: F401

    cfg = getattr(cfg, '_cfg_dict', cfg)  # a Config's tree of dicts
    for path, keys in _FIXED.items():
        for where, entry in _entries(cfg, path):
            if isinstance(entry, dict):
                for key in entry:
                    if key not in keys:
                        raise UserError(
                            f'{source}: {where}.{key} is not a '
                            f'setting{_close(key, keys)}'
                        )
    for spec in _ENTRIES:
        for where, entry in _entries(cfg, spec[0]):
            if isinstance(entry, dict):
                _check_entry(entry, where, spec, source)
