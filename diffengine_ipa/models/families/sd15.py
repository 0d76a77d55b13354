"""Stable Diffusion 1.x / 2.x: one CLIP text encoder, a UNet."""

import torch

from ...registry import MODELS
from .diffusion_family import DiffusionFamily
from .unet_attention import UNetAdapterMixin

__all__ = ['SD15', 'tokenize']


def tokenize(tokenizer, texts: list[str]) -> torch.Tensor:
    """Token ids (B, L) as the pipelines make them: pad to max, truncate."""
    return tokenizer(
        texts,
        padding='max_length',
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors='pt',
    ).input_ids


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
    pipeline_class = 'StableDiffusionPipeline'
    controlnet_pipeline_class = 'StableDiffusionControlNetPipeline'
    controlnet_model_class = 'ControlNetModel'

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``text_states`` (B, 77, D_ctx): the last hidden states."""
        input_ids = tokenize(self.tokenizer, texts)
        return dict(
            text_states=self.text_encoder(input_ids.to(self.text_encoder.device))[0]
        )
