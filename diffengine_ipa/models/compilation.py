"""``torch.compile`` of the denoiser: the whole model or its repeated blocks.

Regional compilation compiles each repeated block (a UNet's transformer
blocks, a DiT's joint / single-stream blocks) instead of the whole
denoiser: the blocks share one compiled graph per shape, so the first step
costs a fraction of a whole-model compile for most of its speed-up
(diffusers' ``compile_repeated_blocks``; PyTorch's regional-compilation
recipe). On a CPU compiling did not pay: ``--compile`` ran 0.46× (29.7
against ~7 s per full-size SD1.5 step at 256 px), so ``hardware.compile=
'auto'`` never compiles there.
"""

from torch import nn

from ..errors import UserError

__all__ = ['COMPILE_MODES', 'compile_denoiser', 'repeated_blocks']

COMPILE_MODES = (False, True, 'whole', 'regional')
# Denoisers whose diffusers class names no ``_repeated_blocks``.
_REPEATED_BLOCKS = dict(SD3Transformer2DModel=('JointTransformerBlock',))


def repeated_blocks(denoiser: nn.Module) -> list[nn.Module]:
    """The denoiser's repeated blocks, in module order."""
    names = getattr(denoiser, '_repeated_blocks', None) or _REPEATED_BLOCKS.get(
        type(denoiser).__name__, ()
    )
    return [m for m in denoiser.modules() if type(m).__name__ in names]


def compile_denoiser(denoiser: nn.Module, mode: bool | str) -> int:
    """Compile ``denoiser`` in place by ``mode`` (see :data:`COMPILE_MODES`;
    ``True`` is ``'whole'``); returns the number of compiled modules."""
    if mode not in COMPILE_MODES:
        raise UserError(
            f"model.compile_denoiser={mode!r}: use False, 'whole' (True) or 'regional'"
        )
    if not mode:
        return 0
    if mode != 'regional':
        denoiser.compile()
        return 1
    blocks = repeated_blocks(denoiser)
    if not blocks:
        raise UserError(
            f"model.compile_denoiser='regional': "
            f'{type(denoiser).__name__} names no repeated blocks; '
            "use 'whole'"
        )
    for block in blocks:
        block.compile()
    return len(blocks)
