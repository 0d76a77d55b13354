"""Stable Diffusion 3 / 3.5: an MMDiT transformer, CLIP-L + CLIP-G + T5."""

from typing import Any

import torch
from diffusers.models.attention_processor import SD3IPAdapterJointAttnProcessor2_0
from torch import nn

from ...errors import UserError
from ...registry import MODELS
from ..objectives import RectifiedFlow
from .diffusion_family import DiffusionFamily

__all__ = ['SD3']


@MODELS.register_module()
class SD3(DiffusionFamily):
    """SD3.5 (Large, Medium) and SD3, in InstantX's IP-Adapter layout.

    Text: ``StableDiffusion3Pipeline.encode_prompt`` (CLIP-L and CLIP-G
    penultimate states, padded to T5's width and followed by T5's states;
    both CLIPs' pooled outputs). Objective: rectified flow with the
    logit-normal timestep density and preconditioned outputs, the defaults
    of diffusers' ``train_dreambooth_sd3.py``. Adapter: diffusers'
    ``SD3IPAdapterJointAttnProcessor2_0`` on every attention layer of the
    transformer (each reads the time-aware Resampler's tokens through its own
    AdaLN and RMS norms), loaded by ``SD3IPAdapterMixin.load_ip_adapter``.

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id
            (``stabilityai/stable-diffusion-3.5-large``).
        objective: Overrides of :class:`RectifiedFlow`'s settings.
        max_sequence_length: T5 tokens, as the pipeline's argument of that
            name (256 by default there too).
    """

    components = dict(
        transformer=('diffusers', 'SD3Transformer2DModel'),
        vae=('diffusers', 'AutoencoderKL'),
        text_encoder=('transformers', 'CLIPTextModelWithProjection'),
        text_encoder_2=('transformers', 'CLIPTextModelWithProjection'),
        text_encoder_3=('transformers', 'T5EncoderModel'),
        tokenizer=('transformers', 'CLIPTokenizer'),
        tokenizer_2=('transformers', 'CLIPTokenizer'),
        tokenizer_3=('transformers', 'T5TokenizerFast'),
    )
    denoiser_name = 'transformer'
    pipeline_class = 'StableDiffusion3Pipeline'
    controlnet_pipeline_class = 'StableDiffusion3ControlNetPipeline'
    controlnet_model_class = 'SD3ControlNetModel'
    layout = 'instantx-sd3'
    default_projection = dict(
        type='IPAdapterTimeImageProjection',
        hidden_dims=1280,
        num_tokens=64,
        timestep_in_dim=320,
    )
    # StableDiffusion3Pipeline: the unconditional image is zero features.
    null_image = dict(pooled='zero_features', hidden_states='zero_features')
    generation_defaults = dict(steps=28, guidance_scale=7.0, negative_prompt=None)
    cache_dtype = 'bf16'  # T5 states: (333, 4096) per caption
    inference_dtype = 'bf16'
    size_multiple = 16  # 8× VAE, 2×2 patches
    projection_slot = ('image_proj', False)

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        objective: dict | None = None,
        max_sequence_length: int = 256,
    ) -> None:
        self.max_sequence_length = max_sequence_length
        super().__init__(pretrained_model_name_or_path, objective)

    def build_objective(self, scheduler_config: dict, **overrides) -> Any:
        settings = dict(weighting_scheme='logit_normal', precondition_outputs=True)
        return RectifiedFlow(scheduler_config, **dict(settings, **overrides))

    def check_latent_size(self, latents: torch.Tensor) -> None:
        patch = self.transformer.config.patch_size
        if latents.shape[-1] % patch or latents.shape[-2] % patch:
            raise UserError(
                f'latents of {tuple(latents.shape[-2:])} do not split into '
                f'{patch}×{patch} patches: use an image size that is a '
                'multiple of 16'
            )

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``prompt_embeds`` (B, 77 + T5 tokens, 4096) and
        ``pooled_prompt_embeds`` (B, 2048), as the pipeline encodes them."""
        embeds, _, pooled, _ = self.text_pipeline().encode_prompt(
            prompt=texts,
            prompt_2=None,
            prompt_3=None,
            device=self.text_encoder.device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        return dict(prompt_embeds=embeds, pooled_prompt_embeds=pooled)

    @classmethod
    def adapter_layers(cls, denoiser: nn.Module) -> list[str]:
        """Every attention layer, as diffusers' loader installs them."""
        return list(denoiser.attn_processors)

    @classmethod
    def token_width(cls, denoiser: nn.Module) -> int:
        config = denoiser.config
        return config.num_attention_heads * config.attention_head_dim

    def install_adapter(self, projection: nn.Module) -> None:
        """K/V start as copies of the layer's own ``to_k``/``to_v`` (the
        paper's choice); the AdaLN of the image tokens starts as a plain
        LayerNorm (its modulation zero)."""
        transformer = self.transformer
        modules = dict(transformer.named_modules())
        width = self.token_width(transformer)
        processors = dict(transformer.attn_processors)
        for name in self.adapter_layers(transformer):
            attention = modules[name.removesuffix('.processor')]
            weight = attention.to_k.weight
            processor = SD3IPAdapterJointAttnProcessor2_0(
                hidden_size=width,
                ip_hidden_states_dim=width,
                head_dim=transformer.config.attention_head_dim,
                timesteps_emb_dim=projection.time_embedding_dim,
                scale=1.0,
            ).to(device=weight.device, dtype=weight.dtype)
            processor.to_k_ip.weight.data.copy_(attention.to_k.weight.data)
            processor.to_v_ip.weight.data.copy_(attention.to_v.weight.data)
            nn.init.zeros_(processor.norm_ip.linear.weight)
            nn.init.zeros_(processor.norm_ip.linear.bias)
            processors[name] = processor
        transformer.set_attn_processor(processors)

    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        conditions: dict[str, torch.Tensor],
        image_tokens: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """The velocity (B, C, h, w); the Resampler's tokens (B, N, D) and
        its timestep embedding reach every processor."""
        tokens, time_embedding = image_tokens
        return self.transformer(
            hidden_states=noisy,
            timestep=timesteps,
            encoder_hidden_states=conditions['prompt_embeds'],
            pooled_projections=conditions['pooled_prompt_embeds'],
            joint_attention_kwargs=dict(ip_hidden_states=tokens, temb=time_embedding),
        ).sample

    @classmethod
    def load_ip_adapter(cls, pipe: Any, nested: list[dict[str, dict]]) -> None:
        cls.check_image_prompts([1] * len(nested))
        pipe.load_ip_adapter(nested[0])

    @classmethod
    def check_image_prompts(cls, counts: list[int]) -> None:
        if len(counts) > 1 or counts[0] > 1:
            what = 'several adapters' if len(counts) > 1 else 'several reference images'
            raise UserError(
                f'{what}: StableDiffusion3Pipeline takes one '
                "IP-Adapter reading one image (diffusers' "
                'SD3IPAdapterMixin)'
            )

    @classmethod
    def adapter_scale(cls, scale: Any, count: int) -> Any:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise UserError(
                f'scale {scale!r}: StableDiffusion3Pipeline takes '
                'one number (no per-block scales or presets)'
            )
        return scale

    @classmethod
    def image_prompt_kwargs(
        cls,
        images: list[torch.Tensor],
        nulls: list[torch.Tensor],
        guidance_scale: float,
    ) -> dict[str, Any]:
        """(2, T, D), the null first when the pipeline guides."""
        (image,), (null,) = images, nulls
        embeds = torch.cat([null, image]) if guidance_scale > 1 else image
        return dict(ip_adapter_image_embeds=embeds)

    @classmethod
    def pipeline_call_kwargs(cls, settings: dict) -> dict[str, Any]:
        return dict(max_sequence_length=cls.setting(settings, 'max_sequence_length'))
