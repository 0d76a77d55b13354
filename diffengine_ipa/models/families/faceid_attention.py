"""FaceID's UNet attention: a LoRA on ``to_q``/``to_k``/``to_v``/``to_out``
of every attention layer (self and cross), beside the IP-Adapter K/V of the
cross-attention layers — tencent-ailab's ``LoRAAttnProcessor`` and
``LoRAIPAttnProcessor`` (``attention_processor_faceid.py``), under their
parameter names, so that the official file's
``ip_adapter.<i>.to_q_lora.down.weight`` ... come from ``attn_processors``'
order as the K/V do.

The attention itself is diffusers' (``AttnProcessor2_0``,
``IPAdapterAttnProcessor2_0``), called on a view of the layer whose
projections carry the LoRA: ``W x + lora_scale · up(down(x))``, which is what
peft computes once diffusers' ``load_ip_adapter`` has loaded the same LoRA.
"""

from typing import Any

import torch
from diffusers.models.attention_processor import (
    AttnProcessor2_0,
    IPAdapterAttnProcessor2_0,
)
from torch import nn

__all__ = ['LoRALinear', 'LoRAAttnProcessor', 'LoRAIPAttnProcessor', 'LORA_TARGETS']

LORA_TARGETS = ('to_q', 'to_k', 'to_v', 'to_out')


class LoRALinear(nn.Module):
    """``up(down(x))`` of rank ``rank``: ``down`` ~ N(0, 1/rank), ``up`` zero
    (the official ``LoRALinearLayer``'s start: the UNet is unchanged)."""

    def __init__(self, in_features: int, out_features: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=False)
        nn.init.normal_(self.down.weight, std=1 / rank)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x.to(self.down.weight.dtype))).to(x.dtype)


class _WithLoRA:
    """An ``Attention`` layer whose ``to_q``/``to_k``/``to_v``/``to_out[0]``
    add the processor's LoRA; everything else is the layer's."""

    def __init__(self, attn: nn.Module, lora: nn.Module, scale: float) -> None:
        self._attn = attn

        def add(base: nn.Module, delta: nn.Module) -> Any:
            return lambda x: base(x) + scale * delta(x)

        self.to_q = add(attn.to_q, lora.to_q_lora)
        self.to_k = add(attn.to_k, lora.to_k_lora)
        self.to_v = add(attn.to_v, lora.to_v_lora)
        self.to_out = [add(attn.to_out[0], lora.to_out_lora), attn.to_out[1]]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._attn, name)


def _add_lora(
    module: nn.Module, hidden_size: int, context_size: int, rank: int
) -> None:
    module.to_q_lora = LoRALinear(hidden_size, hidden_size, rank)
    module.to_k_lora = LoRALinear(context_size, hidden_size, rank)
    module.to_v_lora = LoRALinear(context_size, hidden_size, rank)
    module.to_out_lora = LoRALinear(hidden_size, hidden_size, rank)
    module.lora_scale = 1.0


class LoRAAttnProcessor(nn.Module):
    """Self-attention with FaceID's LoRA (the official ``LoRAAttnProcessor``).

    Args:
        hidden_size: The layer's width.
        cross_attention_dim: Width of what it attends to (``None``: itself).
        rank: The LoRA's rank (128 published).
    """

    def __init__(
        self, hidden_size: int, cross_attention_dim: int | None = None, rank: int = 128
    ) -> None:
        super().__init__()
        _add_lora(self, hidden_size, cross_attention_dim or hidden_size, rank)
        self._attention = AttnProcessor2_0()

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        view = _WithLoRA(attn, self, self.lora_scale)
        return self._attention(
            view, hidden_states, encoder_hidden_states, attention_mask, temb
        )


class LoRAIPAttnProcessor(IPAdapterAttnProcessor2_0):
    """Decoupled cross-attention with FaceID's LoRA on the text attention
    (the official ``LoRAIPAttnProcessor``): diffusers' IP-Adapter processor,
    so ``set_ip_adapter_scale`` and masks work as for any adapter.

    Args:
        hidden_size: The layer's width.
        cross_attention_dim: Width of the text and image tokens.
        num_tokens: Image tokens.
        scale: The adapter's strength.
        rank: The LoRA's rank (128 published).
    """

    def __init__(
        self,
        hidden_size: int,
        cross_attention_dim: int,
        num_tokens: int | tuple = 4,
        scale: float = 1.0,
        rank: int = 128,
    ) -> None:
        super().__init__(hidden_size, cross_attention_dim, num_tokens, scale)
        _add_lora(self, hidden_size, cross_attention_dim, rank)

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: Any = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        scale: float = 1.0,
        ip_adapter_masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        view = _WithLoRA(attn, self, self.lora_scale)
        return super().__call__(
            view,
            hidden_states,
            encoder_hidden_states,
            attention_mask,
            temb,
            scale,
            ip_adapter_masks,
        )
