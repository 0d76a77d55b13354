"""What the tools print: the one place that quiets third-party noise and
keeps MMEngine's long reports (environment, config dump, hook table) in the
log file unless ``--verbose``.

Two small patches of MMEngine live here and only here: the console handler of
each ``MMLogger`` gets a filter, and the config formatter (yapf, about a second
per call, six calls per run) remembers its last results.
"""

import functools
import logging
import warnings

__all__ = [
    'NOISE',
    'quiet_third_party',
    'quiet_console',
    'is_noise',
    'memoize_config_formatting',
]

# Notices the kit cannot act on; a person cannot either.
NOISE = (
    'requires torchvision (not installed); falling back to',  # transformers
    '"FileClient" will be deprecated',  # mmengine
    '"HardDiskBackend" is the alias of "LocalBackend"',  # mmengine
    'pkg_resources is deprecated',  # setuptools, imported by mim
    'that should be kept in float32: []',  # diffusers, when there are none
    # torchao (the quant extra) on a CPU build, and what importing it sets off
    '/torchao/_C',  # torchao: its CUDA kernels, not loaded
    'is an Enum subclass and is now natively supported by torch.compile',
    'Unable to import `torchao` Tensor objects',  # diffusers, torchao 0.18
)
_NOISY_LOGGERS = (
    'transformers.utils.import_utils',
    'diffusers.models.modeling_utils',
    'torchao',
    'torch.utils._pytree',
    'diffusers.quantizers.torchao.torchao_quantizer',
)
# MMEngine's reports that belong in the log file, not on the console.
_LOG_FILE_ONLY = (
    'Config:\n',
    '\n------------------------------------------------------------\n'
    'System environment:',
    'Hooks will be executed in the following order',
    'Distributed training is not used, all SyncBatchNorm',
    'Exp name: ',
    'Hardware settings:\n',  # tools/train.py printed them first
)


def is_noise(text: str) -> bool:
    """Whether a console line is one of the filtered third-party notices."""
    return any(pattern in text for pattern in NOISE)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not is_noise(record.getMessage())


class _LogFileOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_LOG_FILE_ONLY)


def quiet_third_party() -> None:
    """Drop :data:`NOISE` from Python warnings and the libraries' loggers
    (transformers, diffusers, MMEngine). Idempotent."""
    for pattern in NOISE:
        warnings.filterwarnings('ignore', message=f'.*{_escape(pattern)}')
    # A logger's filters see the records made on it (not its children's):
    # these are the modules that log the notices.
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
    _patch_mmlogger(verbose=None)


def quiet_console(verbose: bool = False) -> None:
    """Filter :data:`NOISE` from every MMEngine logger, and unless
    ``verbose`` keep its environment report, config dump and hook table
    in the log file only."""
    quiet_third_party()
    _patch_mmlogger(verbose)


_state = dict(verbose=True, patched=False)


def _patch_mmlogger(verbose: bool | None) -> None:
    from mmengine.logging import MMLogger

    if verbose is not None:
        _state['verbose'] = verbose
    if _state['patched']:
        return
    _state['patched'] = True
    original = MMLogger.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.addFilter(_DropNoise())
        if _state['verbose']:
            return
        for handler in self.handlers:
            if type(handler) is logging.StreamHandler:  # the console
                handler.addFilter(_LogFileOnly())

    MMLogger.__init__ = __init__


def memoize_config_formatting() -> None:
    """MMEngine formats a config with yapf each time it shows or saves it
    (the log, ``dump_config``, the visualizer, every checkpoint's meta): the
    same text, formatted once."""
    import mmengine.config.config as config_module

    if getattr(config_module.FormatCode, '_memoized', False):
        return
    original = config_module.FormatCode

    @functools.lru_cache(maxsize=16)
    def _format(text: str, style: tuple) -> tuple:
        return original(text, style_config=dict(style))

    def format_code(text, style_config=None, **kwargs):
        if kwargs or not isinstance(style_config, dict):
            return original(text, style_config=style_config, **kwargs)
        return _format(text, tuple(sorted(style_config.items())))

    format_code._memoized = True
    config_module.FormatCode = format_code


def _escape(text: str) -> str:
    import re

    return re.escape(text)
