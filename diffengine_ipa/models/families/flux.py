"""FLUX.1: a rectified-flow transformer, CLIP-L pooled + T5."""

from typing import Any

import torch
from torch import nn

from ...errors import UserError
from ...registry import MODELS
from ..objectives import RectifiedFlow
from .diffusion_family import DiffusionFamily

__all__ = ['Flux']


@MODELS.register_module()
class Flux(DiffusionFamily):
    """FLUX.1 [dev] (and [schnell]), in XLabs' IP-Adapter layout.

    Text: ``FluxPipeline.encode_prompt`` (T5 states; CLIP-L's pooled output).
    Objective: rectified flow with uniform timesteps and an unweighted loss,
    the defaults of diffusers' ``train_dreambooth_flux.py``; the
    guidance-distilled [dev] model is fed the guidance ``guidance_scale``
    (3.5, FluxPipeline's default), so the adapter trains in the regime it
    generates in. Adapter: diffusers' ``FluxIPAdapterAttnProcessor`` (K/V with
    biases) on the 19 double-stream blocks, loaded by
    ``FluxIPAdapterMixin.load_ip_adapter``.

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id
            (``black-forest-labs/FLUX.1-dev``).
        objective: Overrides of :class:`RectifiedFlow`'s settings.
        guidance_scale: The distilled guidance the transformer gets in
            training (ignored by models without a guidance embedding).
        max_sequence_length: T5 tokens (512, as FluxPipeline).
    """

    components = dict(
        transformer=('diffusers', 'FluxTransformer2DModel'),
        vae=('diffusers', 'AutoencoderKL'),
        text_encoder=('transformers', 'CLIPTextModel'),
        text_encoder_2=('transformers', 'T5EncoderModel'),
        tokenizer=('transformers', 'CLIPTokenizer'),
        tokenizer_2=('transformers', 'T5TokenizerFast'),
    )
    denoiser_name = 'transformer'
    pipeline_class = 'FluxPipeline'
    controlnet_pipeline_class = 'FluxControlNetPipeline'
    controlnet_model_class = 'FluxControlNetModel'
    layout = 'xlabs-flux'
    # FluxPipeline's unconditional image prompt: a black image, encoded.
    null_image = dict(pooled='black_image', hidden_states='black_image')
    generation_defaults = dict(
        steps=28, guidance_scale=3.5, negative_prompt=None, true_cfg_scale=None
    )
    # FluxPipeline's true CFG: true_cfg_scale > 1 with a negative prompt.
    true_cfg = True
    cache_dtype = 'bf16'  # T5 states: (512, 4096) per caption
    inference_dtype = 'bf16'
    size_multiple = 16  # 8× VAE, 2×2 patches

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        objective: dict | None = None,
        guidance_scale: float = 3.5,
        max_sequence_length: int = 512,
    ) -> None:
        self.guidance_scale = guidance_scale
        self.max_sequence_length = max_sequence_length
        super().__init__(pretrained_model_name_or_path, objective)

    def build_objective(self, scheduler_config: dict, **overrides) -> Any:
        return RectifiedFlow(
            scheduler_config, **dict(dict(weighting_scheme='none'), **overrides)
        )

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def check_latent_size(self, latents: torch.Tensor) -> None:
        if latents.shape[-1] % 2 or latents.shape[-2] % 2:
            raise UserError(
                f'latents of {tuple(latents.shape[-2:])} do not pack into 2×2 '
                'patches: use an image size that is a multiple of 16'
            )

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``prompt_embeds`` (B, T5 tokens, 4096), ``pooled_prompt_embeds``
        (B, 768), as the pipeline encodes them."""
        embeds, pooled, _ = self.text_pipeline().encode_prompt(
            prompt=texts,
            prompt_2=None,
            device=self.text_encoder.device,
            max_sequence_length=self.max_sequence_length,
        )
        return dict(prompt_embeds=embeds, pooled_prompt_embeds=pooled)

    @classmethod
    def adapter_layers(cls, denoiser: nn.Module) -> list[str]:
        """The double-stream blocks, as diffusers' loader installs them."""
        return [
            name
            for name in denoiser.attn_processors
            if not name.startswith('single_transformer_blocks')
        ]

    @classmethod
    def token_width(cls, denoiser: nn.Module) -> int:
        return denoiser.config.joint_attention_dim

    def install_adapter(self, projection: nn.Module) -> None:
        """K/V with biases; V starts at zero, so the adapter starts as a no-op
        (FLUX adds the image attention ungated to the block's output)."""
        from diffusers.models.transformers.transformer_flux import (
            FluxIPAdapterAttnProcessor,
        )

        transformer = self.transformer
        weight = transformer.x_embedder.weight
        processors = dict(transformer.attn_processors)
        for name in self.adapter_layers(transformer):
            processor = FluxIPAdapterAttnProcessor(
                hidden_size=transformer.inner_dim,
                cross_attention_dim=self.token_width(transformer),
                num_tokens=(projection.num_tokens,),
                scale=1.0,
                device=weight.device,
                dtype=weight.dtype,
            )
            nn.init.zeros_(processor.to_v_ip[0].weight)
            nn.init.zeros_(processor.to_v_ip[0].bias)
            processors[name] = processor
        transformer.set_attn_processor(processors)

    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        conditions: dict[str, torch.Tensor],
        image_tokens: torch.Tensor,
    ) -> torch.Tensor:
        """The velocity (B, C, h, w): latents packed into 2×2 patches, with
        position ids, σ and the distilled guidance, as FluxPipeline calls the
        transformer; the image tokens (B, N, D) reach the double blocks."""
        from diffusers import FluxPipeline

        batch, channels, height, width = noisy.shape
        packed = FluxPipeline._pack_latents(
            noisy, batch, channels, height, width
        )  # (B, h/2 · w/2, 4C)
        image_ids = FluxPipeline._prepare_latent_image_ids(
            batch, height // 2, width // 2, noisy.device, noisy.dtype
        )
        states = conditions['prompt_embeds']
        text_ids = torch.zeros(
            states.shape[1], 3, device=noisy.device, dtype=noisy.dtype
        )
        guidance = None
        if self.transformer.config.guidance_embeds:
            guidance = torch.full(
                (batch,), self.guidance_scale, device=noisy.device, dtype=torch.float32
            )
        prediction = self.transformer(
            hidden_states=packed,
            timestep=timesteps / 1000,
            guidance=guidance,
            pooled_projections=conditions['pooled_prompt_embeds'],
            encoder_hidden_states=states,
            txt_ids=text_ids,
            img_ids=image_ids,
            joint_attention_kwargs=dict(ip_hidden_states=[image_tokens]),
        ).sample
        scale = self.vae_scale_factor
        return FluxPipeline._unpack_latents(
            prediction, height * scale, width * scale, scale
        )

    @classmethod
    def load_ip_adapter(cls, pipe: Any, nested: list[dict[str, dict]]) -> None:
        pipe.load_ip_adapter(nested, weight_name=['ip_adapter'] * len(nested))

    @classmethod
    def image_prompt_kwargs(
        cls,
        images: list[torch.Tensor],
        nulls: list[torch.Tensor],
        guidance_scale: float,
    ) -> dict[str, Any]:
        """Per adapter (1, N, D); the null images as the negative prompt's."""
        return dict(
            ip_adapter_image_embeds=[image[None] for image in images],
            negative_ip_adapter_image_embeds=[null[None] for null in nulls],
        )

    @classmethod
    def pipeline_call_kwargs(cls, settings: dict) -> dict[str, Any]:
        return dict(max_sequence_length=cls.setting(settings, 'max_sequence_length'))
