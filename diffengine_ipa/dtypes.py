"""One spelling of precisions for configs and command lines: fp32, fp16, bf16.

The names are plain strings, importable without torch, so that every tool's
``--help`` and ``choices`` read them from here; :func:`to_dtype` turns a name
into its ``torch.dtype``.
"""

from typing import Any

from .errors import UserError

__all__ = ['DTYPE_NAMES', 'AMP_MODES', 'CACHE_DTYPES', 'to_dtype']

# The precisions, in the order --help lists them.
DTYPE_NAMES = ('fp32', 'fp16', 'bf16')
# Training precision (--amp, hardware.amp): chosen for this machine, or one.
AMP_MODES = ('auto', 'bf16', 'fp16', 'fp32')
# Storage precision of an embedding cache (fp16 would overflow T5 states).
CACHE_DTYPES = ('fp32', 'bf16')
# The long names torch and MMEngine use, accepted as well.
_ALIASES = dict(float32='fp32', float16='fp16', bfloat16='bf16', half='fp16')


def to_dtype(name: Any, field: str = 'dtype') -> Any:
    """``'bf16'`` (or ``'bfloat16'``, or a ``torch.dtype``) → ``torch.bfloat16``.

    Raises:
        UserError: one line naming ``field`` and the accepted names.
    """
    import torch

    if isinstance(name, torch.dtype):
        return name
    key = _ALIASES.get(str(name), str(name))
    if key not in DTYPE_NAMES:
        raise UserError(
            f'{field}: unknown precision {name!r}; use one of {", ".join(DTYPE_NAMES)}'
        )
    return getattr(torch, dict(fp32='float32', fp16='float16', bf16='bfloat16')[key])
