"""Stable Diffusion 3 / 3.5: an MMDiT transformer, CLIP-L + CLIP-G + T5.

Its roles: training (:class:`SD3`), generation (:class:`SD3Generation`),
InstantX's file layout (:class:`SD3Layout`); its random architectures; its
registry entry (:data:`FAMILY`).
"""

from typing import Any

import torch
from diffusers.models.attention_processor import SD3IPAdapterJointAttnProcessor2_0
from torch import nn

from ...errors import UserError
from ...official_format.layouts import (
    PLUS_PROJECTION,
    AdapterLayout,
    check_input_width,
    check_resampler,
    consecutive_layer_parts,
    describe_layout,
    projection_part,
    require_keys,
)
from ...registry import ARCHITECTURES, LAYOUTS, MODELS
from ..objectives import RectifiedFlow
from ..random_models.architectures import (
    DIT_VAE,
    T5_XXL,
    TINY_CLIP_TEXT,
    clip_text_config,
    tiny_t5_config,
    vae_config,
)
from .diffusion_family import DiffusionFamily
from .family_entry import Family
from .family_generation import FamilyGeneration

__all__ = ['SD3', 'SD3Generation', 'SD3Layout', 'FAMILY', 'SD3_SCHEDULER']

MAX_SEQUENCE_LENGTH = 256  # T5 tokens, StableDiffusion3Pipeline's default


class SD3Generation(FamilyGeneration):
    """``StableDiffusion3Pipeline``: one adapter, one reference, one scale."""

    family_name = 'SD3'
    call_settings = dict(max_sequence_length=MAX_SEQUENCE_LENGTH)
    pipeline_class = 'StableDiffusion3Pipeline'
    controlnet_pipeline_class = 'StableDiffusion3ControlNetPipeline'
    controlnet_model_class = 'SD3ControlNetModel'
    # StableDiffusion3Pipeline: the unconditional image is zero features.
    null_image = dict(pooled='zero_features', hidden_states='zero_features')
    generation_defaults = dict(steps=28, guidance_scale=7.0, negative_prompt=None)
    inference_dtype = 'bf16'
    size_multiple = 16  # 8× VAE, 2×2 patches
    projection_slot = ('image_proj', False)

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

    generation = SD3Generation
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
    layout = 'instantx-sd3'
    default_projection = dict(
        type='IPAdapterTimeImageProjection',
        hidden_dims=1280,
        num_tokens=64,
        timestep_in_dim=320,
    )
    cache_dtype = 'bf16'  # T5 states: (333, 4096) per caption

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        objective: dict | None = None,
        max_sequence_length: int = MAX_SEQUENCE_LENGTH,
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


@LAYOUTS.register_module()
class SD3Layout(AdapterLayout):
    """InstantX's SD3.5 layout: time-aware Resampler, per-block norms."""

    name = 'instantx-sd3'
    loader = "diffusers' SD3IPAdapterMixin.load_ip_adapter (StableDiffusion3Pipeline)"
    families = {2432: 'SD3.5 Large', 1536: 'SD3.5 Medium'}
    BLOCK = {
        'norm_ip.linear.weight',
        'norm_ip.linear.bias',
        'to_k_ip.weight',
        'to_v_ip.weight',
        'norm_q.weight',
        'norm_k.weight',
        'norm_ip_k.weight',
    }

    def recognises(self, layer_keys: list[str]) -> bool:
        return any(key.startswith('norm_ip.') for key in layer_keys)

    def validate(self, state: dict[str, torch.Tensor], source: str) -> None:
        proj = projection_part(state)
        require_keys(
            proj,
            PLUS_PROJECTION
            | {'time_embedding.linear_1.weight', 'layers.0.0.to_q.weight'},
            'image_proj',
            source,
        )
        check_resampler(proj, source)
        info = self.describe(state)
        width, hidden = info['cross_attention_dim'], proj['latents'].shape[2]
        layers = consecutive_layer_parts(state, source)
        for index, params in layers.items():
            require_keys(params, self.BLOCK, f'ip_adapter.{index}', source, exact=True)
            check_input_width(params, 'to_k_ip.weight', width, index, source)
            check_input_width(
                params,
                'norm_ip.linear.weight',
                hidden,
                index,
                source,
                what='timestep embedding',
            )

    def describe(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        proj = projection_part(state)
        return describe_layout(
            self,
            state,
            'time-resampler',
            proj['norm_out.weight'].shape[0],
            proj['latents'].shape[1],
            proj['proj_in.weight'].shape[1],
        )


# stable-diffusion-3.5-large, scheduler/.
SD3_SCHEDULER = dict(
    _class_name='FlowMatchEulerDiscreteScheduler', num_train_timesteps=1000, shift=3.0
)


# --- random architectures ----------------------------------------------------


@ARCHITECTURES.register_module(name='sd35_large')
def sd35_large() -> dict:
    """Stable Diffusion 3.5 Large: MMDiT 8.1B (38 blocks of 2432), CLIP-L,
    CLIP-G and T5-XXL text encoders, 16-channel VAE."""
    return dict(
        family='SD3',
        paired_encoder='siglip-so400m-patch14-384',
        resolution=1024,
        transformer=dict(
            sample_size=128,
            patch_size=2,
            in_channels=16,
            num_layers=38,
            attention_head_dim=64,
            num_attention_heads=38,
            joint_attention_dim=4096,
            caption_projection_dim=2432,
            pooled_projection_dim=2048,
            out_channels=16,
            pos_embed_max_size=192,
            qk_norm='rms_norm',
        ),
        vae=vae_config((128, 256, 512, 512), **DIT_VAE),
        text_encoder=clip_text_config(768, 3072, 12, 12, 768),
        text_encoder_2=clip_text_config(1280, 5120, 32, 20, 1280, 'gelu'),
        text_encoder_3=T5_XXL,
        tokenizer=dict(),
        tokenizer_2=dict(),
        tokenizer_3=dict(),
        scheduler=SD3_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='tiny_sd3')
def tiny_sd3() -> dict:
    """SD3-shaped, tiny: joint attention with RMS-normed Q/K, two CLIPs
    (pooled 32 + 32) and a T5 wider than the CLIP states it pads."""
    return dict(
        family='SD3',
        paired_encoder='tiny_siglip_384',
        resolution=64,
        family_settings=dict(max_sequence_length=32),
        # The published Resampler's depth and head width, one head.
        projection=dict(
            type='IPAdapterTimeImageProjection',
            hidden_dims=64,
            num_tokens=16,
            timestep_in_dim=32,
        ),
        transformer=dict(
            sample_size=32,
            patch_size=2,
            in_channels=4,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=4,
            joint_attention_dim=96,  # T5's width
            caption_projection_dim=32,
            pooled_projection_dim=64,  # 32 + 32: both CLIPs' pooled
            out_channels=4,
            pos_embed_max_size=32,
            qk_norm='rms_norm',
        ),
        vae=vae_config(
            (16, 32),
            norm_num_groups=16,
            **dict(DIT_VAE, latent_channels=4, sample_size=64),
        ),
        text_encoder=TINY_CLIP_TEXT,
        text_encoder_2=TINY_CLIP_TEXT,
        text_encoder_3=tiny_t5_config(96),
        tokenizer=dict(),
        tokenizer_2=dict(),
        tokenizer_3=dict(),
        scheduler=SD3_SCHEDULER,
    )


FAMILY = Family(
    'sd3',
    'SD3.5',
    SD3,
    architecture='sd35_large',
    position=3,
    config='sd35_mini_dataset.py',
)
