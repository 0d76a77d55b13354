"""Decoupled cross-attention in a UNet (SD1.5, SDXL): diffusers'
``IPAdapterAttnProcessor2_0`` beside every cross-attention layer, and what
the UNet families share besides, by role: training (:class:`UNetAdapterMixin`),
generation (:class:`UNetGeneration`) and the file layout (:class:`UNetLayout`,
tencent-ailab's).

Layer numbering in the official file is a processor's index in
``unet.attn_processors`` (self-attention layers count too), so Stable
Diffusion's cross-attention layers get the odd numbers 1, 3, 5, ... Always
enumerated from the actual model, never from a hand-written list.
"""

from functools import partial
from typing import Any

import torch
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
from torch import nn

from ...errors import CheckpointError
from ...official_format.layouts import (
    BASE_PROJECTION,
    FACEID_LORA,
    FACEID_PLUS_PROJECTION,
    FACEID_PROJECTION,
    PLUS_PROJECTION,
    AdapterLayout,
    check_input_width,
    check_resampler,
    describe_layout,
    layer_parts,
    projection_part,
    projection_variant,
    require_keys,
)
from ...registry import LAYOUTS
from ..objectives import NoisePrediction
from .faceid_attention import LoRAAttnProcessor, LoRAIPAttnProcessor
from .family_generation import FamilyGeneration

__all__ = [
    'cross_attention_layers',
    'install_unet_adapter',
    'UNetAdapterMixin',
    'UNetGeneration',
    'UNetLayout',
]


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
    unet: nn.Module, num_tokens: int = 4, scale: float = 1.0, lora_rank: int = 0
) -> None:
    """Give each cross-attention layer trainable ``to_k_ip``/``to_v_ip``.

    out = text attention + scale · image attention, same query; K/V start as
    copies of the layer's own ``to_k``/``to_v``, as in the reference training
    scripts. ``lora_rank`` > 0 (FaceID): every attention layer, self and
    cross, also gets a LoRA of that rank on ``to_q/k/v/out``.
    """
    processors = dict(unet.attn_processors)
    cross = cross_attention_layers(unet)
    modules = dict(unet.named_modules())
    for name in processors if lora_rank else ():
        attention = modules[name.removesuffix('.processor')]
        if name not in cross:
            weight = attention.to_q.weight
            processors[name] = LoRAAttnProcessor(
                attention.to_q.out_features, attention.to_k.in_features, lora_rank
            ).to(device=weight.device, dtype=weight.dtype)
    for name, attention in cross.items():
        weight = attention.to_k.weight
        make = (
            partial(LoRAIPAttnProcessor, rank=lora_rank)
            if lora_rank
            else IPAdapterAttnProcessor2_0
        )
        processor = make(
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
    """What training needs of the UNet families (SD1.5, SDXL): ε/v objective,
    adapter on the cross-attention layers, tokens read as the UNet's second
    ``encoder_hidden_states``, saved in the tencent-ailab layout."""

    denoiser_name = 'unet'
    layout = 'ip-adapter'

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
        install_unet_adapter(
            self.unet,
            projection.num_tokens,
            lora_rank=getattr(projection, 'lora_rank', 0),
        )

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


class UNetGeneration(FamilyGeneration):
    """The UNet pipelines' IP-Adapter arguments (SD1.5, SDXL): image features
    per adapter, region masks, the ControlNet condition as ``image``."""

    generation_defaults = dict(
        steps=30,
        guidance_scale=7.5,
        negative_prompt='monochrome, lowres, bad anatomy, worst quality, low quality',
    )

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


_PROJECTION_KEYS = {
    'base': BASE_PROJECTION,
    'plus': PLUS_PROJECTION,
    'faceid': FACEID_PROJECTION,
    'faceid-plus': FACEID_PLUS_PROJECTION,
}


def _check_lora_layers(layers: dict[int, dict], source: str) -> None:
    """FaceID's LoRA: layers 0, 1, 2, ... each with the four down/up pairs
    of one rank."""
    if sorted(layers) != list(range(len(layers))):
        raise CheckpointError(
            f'{source}: FaceID ip_adapter layers must be numbered 0, 1, 2, ... '
            f'(a LoRA on every attention layer); got {sorted(layers)[:6]}'
        )
    ranks = set()
    for index, params in layers.items():
        lora = {k: v for k, v in params.items() if '_lora.' in k}
        if set(lora) != FACEID_LORA:
            missing = sorted(FACEID_LORA - set(lora)) or sorted(set(lora) - FACEID_LORA)
            raise CheckpointError(
                f'{source}: ip_adapter.{index} lacks or has an odd LoRA key '
                f'{missing[0]} (FaceID: to_{{q,k,v,out}}_lora.{{down,up}}.weight)'
            )
        ranks |= {v.shape[0] for k, v in lora.items() if '.down.' in k}
        ranks |= {v.shape[1] for k, v in lora.items() if '.up.' in k}
    if len(ranks) != 1:
        raise CheckpointError(
            f'{source}: the FaceID LoRA layers have ranks {sorted(ranks)}, not one'
        )


@LAYOUTS.register_module()
class UNetLayout(AdapterLayout):
    """tencent-ailab's layout (SD1.5, SDXL; base, Plus, FaceID, FaceID-Plus)."""

    name = 'ip-adapter'
    loader = (
        "diffusers' IPAdapterMixin.load_ip_adapter "
        '(StableDiffusion/StableDiffusionXL pipelines), ComfyUI IPAdapter'
    )
    families = {768: 'SD1.5', 1024: 'SD2', 2048: 'SDXL'}
    fallback = True  # no per-layer names of its own: what others are not

    def validate(self, state: dict[str, torch.Tensor], source: str) -> None:
        proj = projection_part(state)
        variant = projection_variant(proj)
        require_keys(proj, _PROJECTION_KEYS[variant], 'image_proj', source)
        if variant == 'plus':
            check_resampler(proj, source)
        width = self.describe(state)['cross_attention_dim']
        rows = proj.get('proj.weight', proj.get('proj.2.weight'))
        if variant != 'plus' and rows.shape[0] % width:
            raise CheckpointError(
                f'{source}: image_proj.proj weight rows '
                f'{rows.shape[0]} are not a multiple of the '
                f'cross-attention width {width}'
            )
        layers = layer_parts(state, source)
        kinds = {'to_k_ip.weight', 'to_v_ip.weight'}
        if variant.startswith('faceid'):  # LoRA on every layer, K/V on odd
            _check_lora_layers(layers, source)
            layers = {
                i: {k: v for k, v in p.items() if k in kinds}
                for i, p in layers.items()
                if i % 2
            }
        if sorted(layers) != list(range(1, 2 * len(layers), 2)) or any(
            set(params) != kinds for params in layers.values()
        ):
            raise CheckpointError(
                f'{source}: ip_adapter layers must be numbered 1, 3, 5, ... '
                f'with to_k_ip and to_v_ip each; got {sorted(layers)[:6]}'
            )
        for index, params in layers.items():
            for key in params:
                check_input_width(params, key, width, index, source)
            if params['to_k_ip.weight'].shape != params['to_v_ip.weight'].shape:
                raise CheckpointError(
                    f'{source}: ip_adapter.{index}.to_k_ip and to_v_ip differ '
                    f'in shape ({tuple(params["to_k_ip.weight"].shape)} and '
                    f'{tuple(params["to_v_ip.weight"].shape)})'
                )

    def describe(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        proj = projection_part(state)
        variant = projection_variant(proj)
        if variant.startswith('faceid'):
            width = proj['norm.weight'].shape[0]
            tokens = proj['proj.2.weight'].shape[0] // width
            image_dim = (
                proj['perceiver_resampler.proj_in.weight'].shape[1]
                if variant == 'faceid-plus'
                else proj['proj.0.weight'].shape[1]
            )
            info = describe_layout(self, state, variant, width, tokens, image_dim)
            lora = [v for k, v in state.items() if k.endswith('.to_q_lora.down.weight')]
            info['layers'] = sum(k.endswith('.to_k_ip.weight') for k in state)
            info['lora_layers'] = len(lora)
            info['lora_rank'] = lora[0].shape[0] if lora else 0
            return info
        if 'latents' in proj:
            width = proj['norm_out.weight'].shape[0]
            tokens, image_dim = (
                proj['latents'].shape[1],
                proj['proj_in.weight'].shape[1],
            )
            variant = 'plus'
        else:
            width = proj['norm.weight'].shape[0]
            rows, image_dim = proj['proj.weight'].shape
            tokens, variant = rows // width, 'base'
        return describe_layout(self, state, variant, width, tokens, image_dim)
