"""One spelling of precisions for configs and command lines: fp32, fp16, bf16."""

import torch

from .errors import UserError

__all__ = ['DTYPES', 'DTYPE_NAMES', 'to_dtype']

DTYPES = dict(fp32=torch.float32, fp16=torch.float16, bf16=torch.bfloat16)
DTYPE_NAMES = tuple(DTYPES)
# The long names torch and MMEngine use, accepted as well.
_ALIASES = dict(float32='fp32', float16='fp16', bfloat16='bf16', half='fp16')


def to_dtype(name: 'str | torch.dtype', field: str = 'dtype') -> torch.dtype:
    """``'bf16'`` (or ``'bfloat16'``, or a ``torch.dtype``) → ``torch.bfloat16``.

    Raises:
        UserError: one line naming ``field`` and the accepted names.
    """
    if isinstance(name, torch.dtype):
        return name
    key = _ALIASES.get(str(name), str(name))
    if key not in DTYPES:
        raise UserError(
            f'{field}: unknown precision {name!r}; use one of {", ".join(DTYPE_NAMES)}'
        )
    return DTYPES[key]
