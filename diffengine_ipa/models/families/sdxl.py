"""Stable Diffusion XL: two CLIP text encoders, size/crop conditioning.

Its roles: training (:class:`SDXL`), generation (:class:`SDXLGeneration`),
the tencent-ailab file layout (shared with SD1.5, ``unet_attention``); its
random architectures; its registry entry (:data:`FAMILY`).
"""

import torch

from ...registry import ARCHITECTURES, MODELS
from ..random_models.architectures import TINY_CLIP_TEXT, clip_text_config
from .diffusion_family import DiffusionFamily, require
from .family_entry import Family
from .sd15 import sd15, tiny_sd15, tokenize
from .unet_attention import UNetAdapterMixin, UNetGeneration

__all__ = ['SDXL', 'SDXLGeneration', 'FAMILY', 'SDXL_SCHEDULER']


class SDXLGeneration(UNetGeneration):
    """``StableDiffusionXLPipeline``, its ControlNet pipeline and InstantStyle's
    block presets."""

    family_name = 'SDXL'
    pipeline_class = 'StableDiffusionXLPipeline'
    controlnet_pipeline_class = 'StableDiffusionXLControlNetPipeline'
    controlnet_model_class = 'ControlNetModel'
    # InstantStyle: up_blocks.0.attentions.1 carries style, down_blocks.2
    # .attentions.1 layout (arXiv 2404.02733).
    scale_presets = dict(
        style={'up': {'block_0': [0.0, 1.0, 0.0]}},
        layout={'down': {'block_2': [0.0, 1.0]}},
        style_and_layout={
            'down': {'block_2': [0.0, 1.0]},
            'up': {'block_0': [0.0, 1.0, 0.0]},
        },
    )


@MODELS.register_module()
class SDXL(UNetAdapterMixin, DiffusionFamily):
    """SDXL, as ``StableDiffusionXLPipeline`` conditions its UNet.

    The UNet reads the penultimate hidden states of both text encoders,
    concatenated (768 + 1280 = 2048), and gets the pooled, projected output
    of the second plus the size/crop ``time_ids`` through
    ``added_cond_kwargs``.

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id with
            ``tokenizer(_2)/ text_encoder(_2)/ unet/ vae/ scheduler/``.
        objective: Overrides of the scheduler config the ε/v objective uses.
    """

    components = dict(
        unet=('diffusers', 'UNet2DConditionModel'),
        vae=('diffusers', 'AutoencoderKL'),
        text_encoder=('transformers', 'CLIPTextModel'),
        text_encoder_2=('transformers', 'CLIPTextModelWithProjection'),
        tokenizer=('transformers', 'CLIPTokenizer'),
        tokenizer_2=('transformers', 'CLIPTokenizer'),
    )
    generation = SDXLGeneration

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``text_states`` (B, 77, D_ctx): the penultimate hidden states of
        both encoders, concatenated; ``text_embeds`` (B, D_pool): the second
        encoder's pooled, projected output."""
        states = []
        for tokenizer, encoder in (
            (self.tokenizer, self.text_encoder),
            (self.tokenizer_2, self.text_encoder_2),
        ):
            input_ids = tokenize(tokenizer, texts).to(encoder.device)
            output = encoder(input_ids, output_hidden_states=True)
            states.append(output.hidden_states[-2])  # penultimate layer
        return dict(
            text_states=torch.cat(states, dim=-1), text_embeds=output.text_embeds
        )

    def conditions(
        self, encodings: dict[str, torch.Tensor], inputs: dict
    ) -> dict[str, torch.Tensor]:
        """States, pooled ``text_embeds`` (B, D_pool) and ``time_ids`` (B, 6):
        original size, crop top-left and target size per sample, from the
        data pipeline's ``ComputeTimeIds``."""
        time_ids = require(
            inputs,
            'time_ids',
            'add ComputeTimeIds to the data pipeline and '
            "'time_ids' to PackInputs' input_keys",
        )
        pooled = encodings['text_embeds']
        return dict(encodings, time_ids=time_ids.to(pooled.dtype))


# The SDXL scheduler config (stable-diffusion-xl-base-1.0, scheduler/).
SDXL_SCHEDULER = dict(
    _class_name='EulerDiscreteScheduler',
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule='scaled_linear',
    num_train_timesteps=1000,
    steps_offset=1,
    timestep_spacing='leading',
    interpolation_type='linear',
    use_karras_sigmas=False,
    prediction_type='epsilon',
)


# --- random architectures ----------------------------------------------------


@ARCHITECTURES.register_module(name='sdxl')
def sdxl() -> dict:
    """Stable Diffusion XL base 1.0: UNet 2.6B, CLIP ViT-L + OpenCLIP bigG text."""
    return dict(
        family='SDXL',
        paired_encoder='clip-vit-bigg-patch14',
        resolution=1024,
        unet=dict(
            sample_size=128,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280),
            down_block_types=(
                'DownBlock2D',
                'CrossAttnDownBlock2D',
                'CrossAttnDownBlock2D',
            ),
            up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'),
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type='text_time',
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        ),  # 1280 + 6 · 256
        vae=dict(
            sd15()['vae'], sample_size=1024, scaling_factor=0.13025, force_upcast=True
        ),
        text_encoder=clip_text_config(768, 3072, 12, 12, 768),
        text_encoder_2=clip_text_config(1280, 5120, 32, 20, 1280, 'gelu'),
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=SDXL_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='tiny_sdxl')
def tiny_sdxl() -> dict:
    """SDXL-shaped, tiny: two text encoders, text-time embedding, no
    attention at the highest resolution, deeper transformers below."""
    return dict(
        family='SDXL',
        paired_encoder='tiny_clip_vision',
        resolution=64,
        unet=dict(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
            up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'),
            transformer_layers_per_block=(1, 2),
            attention_head_dim=(2, 4),
            cross_attention_dim=64,  # 32 + 32: both text encoders
            use_linear_projection=True,
            addition_embed_type='text_time',
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=80,  # 32 + 6 · 8
            norm_num_groups=16,
        ),
        vae=dict(tiny_sd15()['vae'], scaling_factor=0.13025, force_upcast=True),
        text_encoder=TINY_CLIP_TEXT,
        text_encoder_2=TINY_CLIP_TEXT,
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=SDXL_SCHEDULER,
    )


FAMILY = Family('sdxl', 'SDXL', SDXL, architecture='sdxl', position=2)
