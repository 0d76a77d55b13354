"""Stable Diffusion 1.x / 2.x: one CLIP text encoder, a UNet.

Its roles: training (:class:`SD15`), generation (:class:`SD15Generation`),
the tencent-ailab file layout (shared with SDXL, ``unet_attention``); its
random architectures; its registry entry (:data:`FAMILY`).
"""

import torch

from ...registry import ARCHITECTURES, MODELS
from ..random_models.architectures import TINY_CLIP_TEXT, clip_text_config, vae_config
from .diffusion_family import DiffusionFamily
from .family_entry import Family
from .unet_attention import UNetAdapterMixin, UNetGeneration

__all__ = ['SD15', 'SD15Generation', 'FAMILY', 'SD15_SCHEDULER', 'tokenize']


def tokenize(tokenizer, texts: list[str]) -> torch.Tensor:
    """Token ids (B, L) as the pipelines make them: pad to max, truncate."""
    return tokenizer(
        texts,
        padding='max_length',
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors='pt',
    ).input_ids


class SD15Generation(UNetGeneration):
    """``StableDiffusionPipeline`` and its ControlNet pipeline."""

    family_name = 'SD15'
    pipeline_class = 'StableDiffusionPipeline'
    controlnet_pipeline_class = 'StableDiffusionControlNetPipeline'
    controlnet_model_class = 'ControlNetModel'


@MODELS.register_module()
class SD15(UNetAdapterMixin, DiffusionFamily):
    """SD1.5 (and SD2.x): the UNet reads the text encoder's last hidden states.

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id with
            ``unet/ vae/ text_encoder/ tokenizer/ scheduler/``.
        objective: Overrides of the scheduler config the ε/v objective uses.
    """

    components = dict(
        unet=('diffusers', 'UNet2DConditionModel'),
        vae=('diffusers', 'AutoencoderKL'),
        text_encoder=('transformers', 'CLIPTextModel'),
        tokenizer=('transformers', 'CLIPTokenizer'),
    )
    generation = SD15Generation

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``text_states`` (B, 77, D_ctx): the last hidden states."""
        input_ids = tokenize(self.tokenizer, texts)
        return dict(
            text_states=self.text_encoder(input_ids.to(self.text_encoder.device))[0]
        )


# The SD1.5 scheduler config (stable-diffusion-v1-5, scheduler/).
SD15_SCHEDULER = dict(
    _class_name='PNDMScheduler',
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule='scaled_linear',
    num_train_timesteps=1000,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    steps_offset=1,
    clip_sample=False,
)


# --- random architectures ----------------------------------------------------


@ARCHITECTURES.register_module(name='sd15')
def sd15() -> dict:
    """Stable Diffusion 1.5: UNet 860M, VAE 84M, CLIP ViT-L/14 text encoder."""
    return dict(
        family='SD15',
        paired_encoder='clip-vit-large-patch14',
        resolution=512,
        unet=dict(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=(
                'CrossAttnDownBlock2D',
                'CrossAttnDownBlock2D',
                'CrossAttnDownBlock2D',
                'DownBlock2D',
            ),
            up_block_types=(
                'UpBlock2D',
                'CrossAttnUpBlock2D',
                'CrossAttnUpBlock2D',
                'CrossAttnUpBlock2D',
            ),
            cross_attention_dim=768,
            attention_head_dim=8,
        ),
        vae=vae_config((128, 256, 512, 512), sample_size=512),
        text_encoder=clip_text_config(768, 3072, 12, 12, 768),
        tokenizer=dict(),
        scheduler=SD15_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='mid_sd15')
def mid_sd15() -> dict:
    """SD1.5 at a quarter of its width (same depth and layout): big enough
    for the encoders' share of a step to resemble SD1.5's, small enough for
    CPU benchmarks."""
    full = sd15()
    return dict(
        full,
        paired_encoder='mid_clip_vision',
        resolution=256,
        unet=dict(
            full['unet'],
            block_out_channels=(80, 160, 320, 320),
            cross_attention_dim=192,
            attention_head_dim=4,
            norm_num_groups=16,
        ),
        vae=dict(full['vae'], block_out_channels=(32, 64, 128, 128)),
        text_encoder=dict(
            full['text_encoder'],
            hidden_size=192,
            intermediate_size=768,
            num_hidden_layers=6,
            num_attention_heads=4,
            projection_dim=192,
        ),
    )


@ARCHITECTURES.register_module(name='tiny_sd15')
def tiny_sd15() -> dict:
    """SD1.5-shaped, tiny: cross-attention in down, up and mid blocks."""
    return dict(
        family='SD15',
        paired_encoder='tiny_clip_vision',
        resolution=64,
        unet=dict(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'),
            up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
            cross_attention_dim=32,
            attention_head_dim=4,
            norm_num_groups=16,
        ),
        vae=vae_config((16, 32), norm_num_groups=16, sample_size=64),
        text_encoder=TINY_CLIP_TEXT,
        tokenizer=dict(),
        scheduler=SD15_SCHEDULER,
    )


FAMILY = Family('sd15', 'SD1.5', SD15, architecture='sd15', position=1)
