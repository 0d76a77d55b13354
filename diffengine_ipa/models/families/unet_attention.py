"""Decoupled cross-attention in a UNet (SD1.5, SDXL): diffusers'
``IPAdapterAttnProcessor2_0`` beside every cross-attention layer, and what
the UNet families share besides.

Layer numbering in the official file is a processor's index in
``unet.attn_processors`` (self-attention layers count too), so Stable
Diffusion's cross-attention layers get the odd numbers 1, 3, 5, ... Always
enumerated from the actual model, never from a hand-written list.
"""

from typing import Any

import torch
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
from torch import nn

from ..objectives import NoisePrediction

__all__ = ['cross_attention_layers', 'install_unet_adapter', 'UNetAdapterMixin']


def cross_attention_layers(unet: nn.Module) -> dict[str, nn.Module]:
    """``{processor name: Attention module}`` of every cross-attention layer."""
    modules = dict(unet.named_modules())
    layers = {}
    for name in unet.attn_processors:
        attention = modules[name.removesuffix('.processor')]
        if attention.is_cross_attention:
            layers[name] = attention
    return layers


def install_unet_adapter(
    unet: nn.Module, num_tokens: int = 4, scale: float = 1.0
) -> None:
    """Give each cross-attention layer trainable ``to_k_ip``/``to_v_ip``.

    out = text attention + scale · image attention, same query; K/V start as
    copies of the layer's own ``to_k``/``to_v``, as in the reference training
    scripts.
    """
    processors = dict(unet.attn_processors)
    for name, attention in cross_attention_layers(unet).items():
        weight = attention.to_k.weight
        processor = IPAdapterAttnProcessor2_0(
            hidden_size=attention.to_k.out_features,
            cross_attention_dim=attention.to_k.in_features,
            num_tokens=(num_tokens,),
            scale=scale,
        ).to(device=weight.device, dtype=weight.dtype)
        processor.to_k_ip[0].weight.data.copy_(attention.to_k.weight.data)
        processor.to_v_ip[0].weight.data.copy_(attention.to_v.weight.data)
        processors[name] = processor
    unet.set_attn_processor(processors)


class UNetAdapterMixin:
    """The UNet families' shared answers (SD1.5, SDXL): ε/v objective,
    adapter on the cross-attention layers, tokens read as the UNet's second
    ``encoder_hidden_states``, the tencent-ailab layout."""

    denoiser_name = 'unet'
    layout = 'ip-adapter'
    generation_defaults = dict(
        steps=30,
        guidance_scale=7.5,
        negative_prompt='monochrome, lowres, bad anatomy, worst quality, low quality',
    )

    def build_objective(self, scheduler_config: dict, **overrides) -> Any:
        snr_gamma = overrides.pop('snr_gamma', None)
        return NoisePrediction(dict(scheduler_config, **overrides), snr_gamma)

    @classmethod
    def adapter_layers(cls, denoiser: nn.Module) -> list[str]:
        return list(cross_attention_layers(denoiser))

    @classmethod
    def token_width(cls, denoiser: nn.Module) -> int:
        return denoiser.config.cross_attention_dim

    def install_adapter(self, projection: nn.Module) -> None:
        install_unet_adapter(self.unet, projection.num_tokens)

    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        conditions: dict[str, torch.Tensor],
        image_tokens: torch.Tensor,
    ) -> torch.Tensor:
        """ε or v (B, 4, h, w); the image tokens (B, N, D) go to the
        processors as the second part of ``encoder_hidden_states``."""
        added = {k: v for k, v in conditions.items() if k != 'text_states'}
        return self.unet(
            noisy,
            timesteps,
            encoder_hidden_states=(conditions['text_states'], [image_tokens]),
            added_cond_kwargs=added or None,
        ).sample

    @classmethod
    def image_prompt_kwargs(
        cls,
        images: list[torch.Tensor],
        nulls: list[torch.Tensor],
        guidance_scale: float,
    ) -> dict[str, Any]:
        """Per adapter (2, N, ...): the null images first when the pipeline
        guides, as its own ``encode_image`` makes them."""
        embeds = [
            torch.stack([null, image]) if guidance_scale > 1 else image[None]
            for image, null in zip(images, nulls, strict=True)
        ]
        return dict(ip_adapter_image_embeds=embeds)

    @classmethod
    def mask_kwargs(
        cls, masks: list[list], pipe: Any, height: int | None, width: int | None
    ) -> dict[str, Any]:
        """diffusers' ``IPAdapterMaskProcessor``, one (1, N, H, W) per adapter."""
        from diffusers.image_processor import IPAdapterMaskProcessor

        height = height or pipe.unet.config.sample_size * pipe.vae_scale_factor
        width = width or pipe.unet.config.sample_size * pipe.vae_scale_factor
        processor = IPAdapterMaskProcessor()
        tensors = []
        for images in masks:
            mask = processor.preprocess(images, height=height, width=width)
            tensors.append(mask.reshape(1, mask.shape[0], *mask.shape[2:]))
        return dict(cross_attention_kwargs=dict(ip_adapter_masks=tensors))

    @classmethod
    def control_kwargs(cls, image: Any, scale: float) -> dict[str, Any]:
        return dict(image=image, controlnet_conditioning_scale=scale)
