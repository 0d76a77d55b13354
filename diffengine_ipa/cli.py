"""Command lines checked before anything slow happens.

Every tool parses with :class:`ToolParser`, whose mistakes are one line
(``error: argument --steps: must be at least 1, got 0``) and exit 2, as the
tools' own errors are. The ``type=`` functions here check each number and
output path at parse time, before a config is read or a model loads.
"""

import argparse
import math
import os
import os.path as osp
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from .errors import UserError

__all__ = [
    'ToolParser',
    'ConfigOptions',
    'int_at_least',
    'float_at_least',
    'seed',
    'output_file',
    'output_image',
    'output_folder',
    'check_device',
    'check_image_size',
    'parse_launched',
    'IMAGE_EXTENSIONS',
]

# The image files the kit reads, the one list: caption folders, the record
# check, the web UI's uploads and folder scan (a GIF is read as its first
# frame). Written images take the same, but GIF (256 colours).
IMAGE_EXTENSIONS = (
    '.png',
    '.jpg',
    '.jpeg',
    '.webp',
    '.bmp',
    '.gif',
    '.tif',
    '.tiff',
)
_MAX_SEED = 2**63 - 1


class ToolParser(argparse.ArgumentParser):
    """``argparse`` with one-line errors: ``error: ...`` and exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f'error: {message} (see {self.prog} --help)', file=sys.stderr)
        raise SystemExit(2)


class ConfigOptions(argparse.Action):
    """MMEngine's ``--cfg-options KEY=VALUE ...`` (its ``DictAction``
    parsing, imported only when the option is given, so ``--help`` stays
    fast); a malformed entry is a parse error (one line), not a traceback."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction

        values = values if isinstance(values, list) else [values]
        options = dict(getattr(namespace, self.dest, None) or {})
        for value in values:
            if '=' not in value or not value.split('=', 1)[0]:
                raise argparse.ArgumentError(
                    self, f'{value!r} is not KEY=VALUE (e.g. train_cfg.max_epochs=2)'
                )
            key, text = value.split('=', 1)
            try:
                options[key] = DictAction._parse_iterable(text)
            except (ValueError, SyntaxError, AssertionError) as err:  # brackets
                raise argparse.ArgumentError(
                    self, f'cannot read {values}: {err}'
                ) from None
        setattr(namespace, self.dest, options)


def parse_launched(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """``parser``'s arguments, with MMEngine's ``--launcher`` and the
    ``--local-rank`` (or ``--local_rank``) that torch.distributed.launch
    passes added; the latter goes on as ``LOCAL_RANK`` (where MMEngine reads
    it) unless the launcher has set that already."""
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher for distributed training (default: none)',
    )
    parser.add_argument(
        '--local_rank',
        '--local-rank',
        type=int,
        default=0,
        help='set by torch.distributed.launch (default: 0)',
    )
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected {"an integer" if kind is int else "a number"}, got {text!r}'
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a finite number, got {text}')
    return value


def _at_least(kind: type, low: int | float) -> Callable[[str], Any]:
    """An ``int`` or a finite ``float`` ``>= low`` (floats shown with ``:g``)."""
    name, shown = ('integer', '{}') if kind is int else ('number', '{:g}')

    def parse(text: str) -> Any:
        value = _number(text, kind)
        if value < low:
            raise argparse.ArgumentTypeError(
                f'must be at least {shown.format(low)}, got {shown.format(value)}'
            )
        return value

    parse.__name__ = f'{name} >= {shown.format(low)}'
    return parse


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer ``>= low``."""
    return _at_least(int, low)


def float_at_least(low: float) -> Callable[[str], float]:
    """A finite number ``>= low``."""
    return _at_least(float, low)


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**63)."""
    value = _number(text, int)
    if not 0 <= value <= _MAX_SEED:
        raise argparse.ArgumentTypeError(
            f'a seed is an integer from 0 to 2**63 - 1, got {value}'
        )
    return value


def output_file(*extensions: str) -> Callable[[str], str]:
    """A file to write, ending in one of ``extensions``; not a folder, and
    not inside a file."""

    def parse(text: str) -> str:
        if osp.isdir(text) or text.endswith(os.sep):
            raise argparse.ArgumentTypeError(
                f'{text} is a folder; give a file name ending in {extensions[0]}'
            )
        if extensions and not text.lower().endswith(extensions):
            raise argparse.ArgumentTypeError(
                f'{text}: the file name must end in {" or ".join(extensions)}'
            )
        _check_parent(text)
        return text

    parse.__name__ = 'output file'
    return parse


output_image = output_file(*(e for e in IMAGE_EXTENSIONS if e != '.gif'))


def output_folder(text: str) -> str:
    """A folder to write into: not an existing file, nor inside one."""
    if osp.exists(text) and not osp.isdir(text):
        raise argparse.ArgumentTypeError(f'{text} is a file, not a folder')
    _check_parent(osp.join(text, 'x'))
    return text


def _check_parent(path: str) -> None:
    folder = osp.dirname(osp.abspath(path))
    while not osp.exists(folder):
        folder = osp.dirname(folder)
    if not osp.isdir(folder):
        raise argparse.ArgumentTypeError(f'{path}: {folder} is a file, not a folder')
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f'{path}: cannot write in {folder}')


def check_device(name: str) -> str:
    """``name`` if this machine has that device, else one line."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(
            f'--device {name}: not a device name (use cpu, cuda, cuda:N or mps)'
        ) from None
    if device.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(
                f'--device {name}: this machine has no CUDA GPU (use --device cpu)'
            )
        if (device.index or 0) >= count:
            raise UserError(
                f'--device {name}: this machine has {count} CUDA '
                f'GPU(s), cuda:0 to cuda:{count - 1}'
            )
    elif device.type == 'mps':
        if not torch.backends.mps.is_available():
            raise UserError(f'--device {name}: MPS is not available here')
    elif device.type != 'cpu':
        raise UserError(
            f'--device {name}: not supported (use cpu, cuda, cuda:N or mps)'
        )
    return name


def check_image_size(
    height: int | None, width: int | None, multiple: int, family: str
) -> None:
    """Image sides that the family's VAE and denoiser can generate."""
    for name, value in (('--height', height), ('--width', width)):
        if value is not None and (value <= 0 or value % multiple):
            raise UserError(
                f'{name} {value}: {family} generates sides that '
                f'are positive multiples of {multiple}'
            )
