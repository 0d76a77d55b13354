"""Stable Diffusion XL: two CLIP text encoders, size/crop conditioning."""

import torch

from ...registry import MODELS
from .diffusion_family import DiffusionFamily, require
from .sd15 import tokenize
from .unet_attention import UNetAdapterMixin

__all__ = ['SDXL']


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
