"""Memory of a training step under each quantization and cache choice, from
one fake-tensor estimate (:func:`estimate_training_memory`).

The estimate counts a step with every frozen weight resident in
``frozen_dtype``. The two memory options change weights only:

- a quantized denoiser stores its Linear weights in fewer bits (int8 and
  fp8: 8 bits plus a per-row scale; NF4: 4 bits plus one absmax per 64
  weights, those quantized again: ~4.13 bits), each dequantized one layer at
  a time (the largest layer's weight, in ``frozen_dtype``, on top);
- training from the embedding cache frees the text encoders, the image
  encoder and the VAE encoder (``ReleaseEncodersHook``).

So peak = estimated peak − the bytes these options save, exact for the
weights and leaving activations, gradients and AdamW state as estimated.
"""

from typing import Any

import torch
from torch import nn

from ..dtypes import to_dtype

__all__ = ['QUANTIZED_BITS', 'CARDS_GB', 'part_bytes', 'option_rows']

# Bits per stored weight, scales included (see the module docstring).
QUANTIZED_BITS = dict(int8=8.0, fp8=8.0, nf4=4.0 + 8 / 64 + 32 / (64 * 256))
CARDS_GB = (16, 24, 48, 80)
CONTEXT_GB = 1.0  # CUDA context and fragmentation, as tools/estimate_memory


def _bytes(params: list[torch.Tensor]) -> int:
    return sum(p.numel() * p.element_size() for p in params)


def part_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes of an ``IPAdapter``'s frozen parts: ``denoiser_linear`` (what a
    quantized denoiser stores in fewer bits), ``largest_linear`` (one layer
    dequantized at a time), and ``freed_by_cache`` (text encoders, image
    encoder, VAE encoder)."""
    family = model.family
    linears = [
        m.weight
        for m in family.denoiser.modules()
        if type(m) is nn.Linear and not m.weight.requires_grad
    ]
    encoders = [
        getattr(family, name)
        for name in family.components
        if name.startswith('text_encoder')
    ]
    encoders += [model.image_encoder.model, family.vae.encoder]
    return dict(
        denoiser_linear=_bytes(linears),
        largest_linear=max((_bytes([w]) for w in linears), default=0),
        freed_by_cache=sum(_bytes(list(m.parameters())) for m in encoders),
    )


def option_rows(
    estimate: dict[str, Any],
    quantize_modes: tuple = (None, 'int8', 'fp8', 'nf4'),
    cached: tuple = (False, True),
) -> list[dict[str, Any]]:
    """One row per quantization × cache choice for an estimate that has
    ``parts`` (:func:`part_bytes`), with the cards it fits."""
    parts = estimate['parts']
    frozen_bits = torch.finfo(to_dtype(estimate['frozen_dtype'])).bits
    rows = []
    for mode in quantize_modes:
        for cache in cached:
            saved = parts['freed_by_cache'] if cache else 0
            if mode:
                kept = QUANTIZED_BITS[mode] / frozen_bits
                saved += parts['denoiser_linear'] * (1 - kept)
                saved -= parts['largest_linear']  # dequantized, transiently
            peak = estimate['peak_bytes'] - saved
            gb = peak / 1e9
            rows.append(
                dict(
                    {
                        k: estimate[k]
                        for k in (
                            'architecture',
                            'batch',
                            'resolution',
                            'frozen_dtype',
                            'gradient_checkpointing',
                        )
                    },
                    quantize=mode,
                    cached=cache,
                    peak_gb=gb,
                    fits=[card for card in CARDS_GB if gb + CONTEXT_GB <= card],
                )
            )
    return rows
