"""A quantized frozen base: the frozen Linear layers stored in 8 or 4 bits.

Only the adapter trains, so the denoiser, the text encoders and the image
encoder can keep their weights quantized (as SimpleTuner, ai-toolkit and
FLUX QLoRA do). ``model.quantize`` names a mode per part::

    model = dict(quantize=dict(denoiser='nf4', text_encoders='int8'))

- ``'int8'``: torchao int8 weight-only (CPU and CUDA);
- ``'fp8'``: torchao float8 weight-only (CUDA GPUs with float8, compute
  capability 8.9 or later);
- ``'nf4'``: bitsandbytes 4-bit NormalFloat (CUDA).

Frozen ``nn.Linear`` layers are quantized; convolutions, norms and the
adapter's own layers (trainable: ``requires_grad``) keep their precision, so
the adapter trains and is saved exactly as without quantization.
"""

import logging
from collections.abc import Callable

import torch
from torch import nn

from ..errors import UserError

__all__ = [
    'QUANTIZE_MODES',
    'QUANTIZE_PARTS',
    'check_quantize',
    'frozen_parts',
    'quantize_frozen_linears',
    'quantize_parts',
    'quantized_linear_count',
]

QUANTIZE_MODES = ('int8', 'fp8', 'nf4')
QUANTIZE_PARTS = ('denoiser', 'text_encoders', 'image_encoder')
_PACKAGES = dict(int8='torchao', fp8='torchao', nf4='bitsandbytes')
_INSTALL = "pip install '.[quant]'"


def check_quantize(spec: dict | None) -> dict[str, str]:
    """``model.quantize`` as ``{part: mode}`` (parts given ``None`` left
    out), or one line naming the bad key or value and what it accepts."""
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise UserError(
            f'model.quantize={spec!r}: give a dict, e.g. '
            "dict(denoiser='int8', text_encoders='int8')"
        )
    modes = {}
    for part, mode in spec.items():
        if part not in QUANTIZE_PARTS:
            raise UserError(
                f'model.quantize.{part}: unknown part; use {", ".join(QUANTIZE_PARTS)}'
            )
        if mode is None:
            continue
        if mode not in QUANTIZE_MODES:
            raise UserError(
                f'model.quantize.{part}={mode!r}: use '
                f'{", ".join(map(repr, QUANTIZE_MODES))} or None'
            )
        modes[part] = mode
    return modes


def _require(mode: str, where: str) -> None:
    """One line when ``mode`` needs a device or a package this machine lacks."""
    if mode != 'int8' and not torch.cuda.is_available():
        raise UserError(
            f'{where}={mode!r} needs a CUDA GPU (this machine has '
            "none); on a CPU use 'int8'"
        )
    if mode == 'fp8' and torch.cuda.get_device_capability() < (8, 9):
        name = torch.cuda.get_device_name()
        raise UserError(
            f"{where}='fp8' needs a GPU with float8 (compute "
            f'capability 8.9+, e.g. L4, RTX 4090, H100); {name} '
            "has none: use 'int8' or 'nf4'"
        )
    package = _PACKAGES[mode]
    try:
        if package == 'torchao':
            _import_torchao()
        else:
            import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserError(
            f'{where}={mode!r} needs {package} (not installed): {_INSTALL}'
        ) from None


def _import_torchao():
    """torchao, without its notices about the CUDA kernels a CPU build lacks."""
    logger = logging.getLogger('torchao')
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import torchao.quantization
    finally:
        logger.setLevel(level)
    return torchao.quantization


def _is_frozen_linear(module: nn.Module, _fqn: str = '') -> bool:
    return type(module) is nn.Linear and not module.weight.requires_grad


def quantized_linear_count(module: nn.Module) -> int:
    """How many of ``module``'s Linear layers hold quantized weights."""
    return sum(
        1
        for m in module.modules()
        if isinstance(m, nn.Linear)
        and type(m.weight) not in (torch.Tensor, nn.Parameter)
    )


def quantize_frozen_linears(
    module: nn.Module, mode: str, where: str = 'model.quantize'
) -> int:
    """Quantize ``module``'s frozen ``nn.Linear`` layers in place.

    Args:
        module: A frozen model part (its trainable layers are left alone).
        mode: ``'int8'``, ``'fp8'`` or ``'nf4'``.
        where: The config field, for the error lines.

    Returns:
        The number of layers quantized.
    """
    _require(mode, where)
    layers = [m for m in module.modules() if _is_frozen_linear(m)]
    dtypes = {id(m): m.weight.dtype for m in layers}
    if mode == 'nf4':
        _to_nf4(module)
    else:
        quantization = _import_torchao()
        if mode == 'int8':
            config = quantization.Int8WeightOnlyConfig()
        else:
            config = quantization.Float8WeightOnlyConfig()
            module.to(torch.device('cuda', torch.cuda.current_device()))
        quantization.quantize_(module, config, filter_fn=_is_frozen_linear)
    for layer in module.modules():  # the same modules (torchao), or NF4's
        dtype = getattr(layer, 'frozen_dtype', None) or dtypes.get(id(layer))
        if dtype is not None:
            _inputs_in(layer, dtype)
    return len(layers)


def _inputs_in(layer: nn.Module, dtype: torch.dtype) -> None:
    """Cast the layer's input to ``dtype`` (its weights' precision): a
    quantized weight's matmul runs outside autocast and answers in its
    input's dtype, so without the cast a bf16 model under autocast would
    hand fp32 on to its next (bf16) layer."""

    def cast(_module: nn.Module, args: tuple) -> tuple:
        return (args[0].to(dtype), *args[1:])

    layer.register_forward_pre_hook(cast)


def _to_nf4(module: nn.Module) -> None:
    """Swap every frozen Linear for a bitsandbytes NF4 ``Linear4bit`` (its
    weights quantized on the current CUDA device)."""
    import bitsandbytes as bnb

    device = torch.device('cuda', torch.cuda.current_device())
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if not _is_frozen_linear(child):
                continue
            compute = (
                child.weight.dtype
                if child.weight.dtype != torch.float32
                else torch.bfloat16
            )
            layer = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=compute,
                quant_type='nf4',
                device='meta',
            )
            layer.frozen_dtype = child.weight.dtype
            layer.weight = bnb.nn.Params4bit(  # quantized as it moves
                child.weight.data, requires_grad=False, quant_type='nf4'
            ).to(device)
            if child.bias is not None:
                layer.bias = nn.Parameter(
                    child.bias.data.to(device), requires_grad=False
                )
            setattr(parent, name, layer)


def frozen_parts(model: nn.Module) -> dict[str, list[nn.Module]]:
    """An ``IPAdapter``'s quantizable parts, by :data:`QUANTIZE_PARTS` name."""
    family = model.family
    return dict(
        denoiser=[family.denoiser],
        text_encoders=[
            getattr(family, name)
            for name in family.components
            if name.startswith('text_encoder')
        ],
        image_encoder=[model.image_encoder.model],
    )


def quantize_parts(
    model: nn.Module, modes: dict[str, str], log: Callable[[str], None] | None = None
) -> dict[str, int]:
    """Quantize an ``IPAdapter``'s frozen parts by ``modes``
    (:func:`check_quantize`); returns the layers quantized per part."""
    parts = frozen_parts(model)
    counts = {}
    for part, mode in modes.items():
        where = f'model.quantize.{part}'
        counts[part] = sum(quantize_frozen_linears(m, mode, where) for m in parts[part])
        if log is not None:
            log(f'{where}={mode!r}: {counts[part]} Linear layers quantized')
    return counts
