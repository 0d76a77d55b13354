"""Chroma: a FLUX.1 [schnell] derivative, T5 only (no CLIP), real CFG.

Its roles: training (:class:`Chroma`), generation (:class:`ChromaGeneration`);
its file layout is XLabs' FLUX.1 one (``xlabs-flux``): diffusers'
``ChromaPipeline`` is a ``FluxIPAdapterMixin`` and its
``ChromaTransformer2DModel`` a ``FluxTransformer2DLoadersMixin``, so
``load_ip_adapter`` installs the same ``FluxIPAdapterAttnProcessor`` on the
double-stream blocks. Then its random architectures and registry entry.
"""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ...registry import ARCHITECTURES, MODELS
from ..random_models.architectures import T5_XXL, tiny_t5_config, vae_config
from .family_entry import Family
from .flux import FLUX_SCHEDULER, FLUX_VAE, Flux, FluxGeneration, pack_latents

__all__ = ['Chroma', 'ChromaGeneration', 'FAMILY']

MAX_SEQUENCE_LENGTH = 512  # T5 tokens, ChromaPipeline's default


class ChromaGeneration(FluxGeneration):
    """``ChromaPipeline``: real CFG (``guidance_scale`` > 1) against the
    negative prompt, the null image (a black image) as its image prompt."""

    family_name = 'Chroma'
    pipeline_class = 'ChromaPipeline'
    controlnet_pipeline_class = ''  # diffusers 0.42 has no Chroma ControlNet
    controlnet_model_class = ''
    generation_defaults = dict(steps=35, guidance_scale=5.0, negative_prompt=None)
    true_cfg = False  # its CFG is guidance_scale's, not a true_cfg_scale


@MODELS.register_module()
class Chroma(Flux):
    """Chroma (``lodestones/Chroma1-HD``), in XLabs' FLUX.1 layout.

    Text: ``ChromaPipeline.encode_prompt`` (T5 states under the tokenizer's
    mask, and the mask that keeps the text tokens up to the first padding
    one); no pooled text, no guidance embedding. Objective and adapter: as
    :class:`Flux` (rectified flow; ``FluxIPAdapterAttnProcessor`` on the
    double-stream blocks).

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id.
        objective: Overrides of :class:`RectifiedFlow`'s settings.
        max_sequence_length: T5 tokens (512, as ChromaPipeline).
    """

    generation = ChromaGeneration
    components = dict(
        transformer=('diffusers', 'ChromaTransformer2DModel'),
        vae=('diffusers', 'AutoencoderKL'),
        text_encoder=('transformers', 'T5EncoderModel'),
        tokenizer=('transformers', 'T5TokenizerFast'),
    )

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        objective: dict | None = None,
        max_sequence_length: int = MAX_SEQUENCE_LENGTH,
    ) -> None:
        super().__init__(
            pretrained_model_name_or_path,
            objective,
            max_sequence_length=max_sequence_length,
        )
        del self.guidance_scale  # Chroma has no guidance embedding

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``prompt_embeds`` (B, T5 tokens, 4096) and
        ``prompt_attention_mask`` (B, T5 tokens), as the pipeline encodes
        them."""
        embeds, _, mask, _, _, _ = self.text_pipeline().encode_prompt(
            prompt=texts,
            device=self.text_encoder.device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        return dict(prompt_embeds=embeds, prompt_attention_mask=mask)

    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        conditions: dict[str, torch.Tensor],
        image_tokens: torch.Tensor,
    ) -> torch.Tensor:
        """The velocity (B, C, h, w), as ChromaPipeline calls the
        transformer: 2×2-packed latents, position ids, σ, the text mask
        extended over the image tokens; the image tokens (B, N, D) reach the
        double blocks."""
        from diffusers import ChromaPipeline

        batch = noisy.shape[0]
        packed, image_ids = pack_latents(noisy)
        states = conditions['prompt_embeds']
        text_mask = conditions['prompt_attention_mask'].to(states.dtype)
        mask = ChromaPipeline._prepare_attention_mask(
            None, batch, packed.shape[1], noisy.dtype, attention_mask=text_mask
        )
        text_ids = torch.zeros(
            states.shape[1], 3, device=noisy.device, dtype=noisy.dtype
        )
        attention = dict(ip_hidden_states=[image_tokens])
        with self._checkpointing_keeps(attention, mask):
            prediction = self.transformer(
                hidden_states=packed,
                timestep=timesteps / 1000,
                encoder_hidden_states=states,
                txt_ids=text_ids,
                img_ids=image_ids,
                attention_mask=mask,
                joint_attention_kwargs=attention,
            ).sample
        return self.unpack_latents(prediction, *noisy.shape[-2:])

    @contextmanager
    def _checkpointing_keeps(
        self, attention: dict, mask: torch.Tensor
    ) -> Iterator[None]:
        """Under gradient checkpointing diffusers 0.42's
        ``ChromaTransformer2DModel`` calls its blocks without the attention
        kwargs (the image tokens) and its single blocks without the mask:
        hand both to every checkpointed block for the call."""
        transformer = self.transformer
        if not (transformer.gradient_checkpointing and torch.is_grad_enabled()):
            yield
            return
        from diffusers.models.transformers.transformer_chroma import (
            ChromaSingleTransformerBlock,
        )

        checkpoint = transformer._gradient_checkpointing_func

        def keeping(block: Any, *args: Any) -> Any:
            extra = dict(joint_attention_kwargs=attention)
            if isinstance(block, ChromaSingleTransformerBlock):
                extra['attention_mask'] = mask
            return checkpoint(functools.partial(block, **extra), *args)

        transformer._gradient_checkpointing_func = keeping
        try:
            yield
        finally:
            transformer._gradient_checkpointing_func = checkpoint


# --- random architectures ----------------------------------------------------


@ARCHITECTURES.register_module(name='chroma1_hd')
def chroma1_hd() -> dict:
    """Chroma1-HD: 8.9B transformer (19 double-stream, 38 single-stream
    blocks of 24 × 128, the modulation approximator), T5-XXL, FLUX's VAE."""
    return dict(
        family='Chroma',
        paired_encoder='clip-vit-large-patch14',
        resolution=1024,
        transformer=dict(
            patch_size=1,
            in_channels=64,
            num_layers=19,
            num_single_layers=38,
            attention_head_dim=128,
            num_attention_heads=24,
            joint_attention_dim=4096,
            axes_dims_rope=(16, 56, 56),
            approximator_num_channels=64,
            approximator_hidden_dim=5120,
            approximator_layers=5,
        ),
        vae=vae_config((128, 256, 512, 512), **FLUX_VAE),
        text_encoder=T5_XXL,
        tokenizer=dict(),
        scheduler=FLUX_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='tiny_chroma')
def tiny_chroma() -> dict:
    """Chroma-shaped, tiny: double- and single-stream blocks, RoPE, the
    modulation approximator, 2×2 latent packing, T5 only."""
    return dict(
        family='Chroma',
        paired_encoder='tiny_clip_vision',
        resolution=64,
        family_settings=dict(max_sequence_length=32),
        transformer=dict(
            patch_size=1,
            in_channels=16,  # 4 latent channels, packed 2×2
            num_layers=2,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=48,  # T5's width
            axes_dims_rope=(4, 6, 6),
            approximator_num_channels=16,
            approximator_hidden_dim=32,
            approximator_layers=1,
        ),
        vae=vae_config(
            (16, 32),
            norm_num_groups=16,
            **dict(FLUX_VAE, latent_channels=4, sample_size=64),
        ),
        text_encoder=tiny_t5_config(48),
        tokenizer=dict(),
        scheduler=FLUX_SCHEDULER,
    )


FAMILY = Family('chroma', 'Chroma', Chroma, architecture='chroma1_hd', position=5)
