"""Text conditioning: tokenizer(s) + text encoder(s), owned by one component.

The prompt encoder is what differs between Stable Diffusion families; the
model picks one by config. It tokenizes too, so that one config field
(``model.pretrained_model_name_or_path``) decides tokenizers and encoders.

``forward(texts)`` gives a dict of encodings (what an embedding cache stores);
``unet_conditions(encodings, time_ids)`` turns them into the UNet's
``encoder_hidden_states`` and ``added_cond_kwargs``.
"""
import torch
from torch import nn

from ..errors import UserError
from ..registry import MODELS
from .model_sources import load_component

__all__ = ['SD15PromptEncoder', 'SDXLPromptEncoder', 'tokenize']


def tokenize(tokenizer, texts: list[str]) -> torch.Tensor:
    """Token ids (B, L) as the pipelines make them: pad to max, truncate."""
    return tokenizer(
        texts,
        padding='max_length',
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors='pt').input_ids


@MODELS.register_module()
class SD15PromptEncoder(nn.Module):
    """One CLIP text encoder; the UNet reads its last hidden states (SD1.x/2.x).

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id with
            ``tokenizer/`` and ``text_encoder/``.
    """

    # The diffusers pipeline that generates with this family.
    pipeline_class = 'StableDiffusionPipeline'

    def __init__(self, pretrained_model_name_or_path: str) -> None:
        from transformers import CLIPTextModel, CLIPTokenizer

        super().__init__()
        source = pretrained_model_name_or_path
        self.tokenizer = load_component(CLIPTokenizer, source, 'tokenizer')
        self.text_encoder = load_component(CLIPTextModel, source,
                                           'text_encoder')

    def pipeline_components(self) -> dict:
        """This component's parts, named as the diffusers pipeline names them."""
        return dict(tokenizer=self.tokenizer, text_encoder=self.text_encoder)

    def forward(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``text_states`` (B, 77, D_ctx): the last hidden states."""
        input_ids = tokenize(self.tokenizer, texts)
        return dict(text_states=self.text_encoder(
            input_ids.to(self.text_encoder.device))[0])

    def unet_conditions(self, encodings: dict, time_ids: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, dict | None]:
        """The states; no extra UNet conditions (``time_ids`` is ignored)."""
        return encodings['text_states'], None


@MODELS.register_module()
class SDXLPromptEncoder(nn.Module):
    """SDXL's two text encoders, as ``StableDiffusionXLPipeline`` uses them.

    The UNet reads the penultimate hidden states of both, concatenated
    (768 + 1280 = 2048 for SDXL), and gets the pooled, projected output of the
    second plus the size/crop ``time_ids`` through ``added_cond_kwargs``.

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id with
            ``tokenizer(_2)/`` and ``text_encoder(_2)/``.
    """

    pipeline_class = 'StableDiffusionXLPipeline'

    def __init__(self, pretrained_model_name_or_path: str) -> None:
        from transformers import (
            CLIPTextModel,
            CLIPTextModelWithProjection,
            CLIPTokenizer,
        )

        super().__init__()
        source = pretrained_model_name_or_path
        self.tokenizer = load_component(CLIPTokenizer, source, 'tokenizer')
        self.tokenizer_2 = load_component(CLIPTokenizer, source, 'tokenizer_2')
        self.text_encoder = load_component(CLIPTextModel, source,
                                           'text_encoder')
        self.text_encoder_2 = load_component(CLIPTextModelWithProjection,
                                             source, 'text_encoder_2')

    def pipeline_components(self) -> dict:
        """This component's parts, named as the diffusers pipeline names them."""
        return dict(tokenizer=self.tokenizer, tokenizer_2=self.tokenizer_2,
                    text_encoder=self.text_encoder,
                    text_encoder_2=self.text_encoder_2)

    def forward(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``text_states`` (B, 77, D_ctx): the penultimate hidden states of
        both encoders, concatenated; ``text_embeds`` (B, D_pool): the second
        encoder's pooled, projected output."""
        states = []
        for tokenizer, encoder in ((self.tokenizer, self.text_encoder),
                                   (self.tokenizer_2, self.text_encoder_2)):
            input_ids = tokenize(tokenizer, texts).to(encoder.device)
            output = encoder(input_ids, output_hidden_states=True)
            states.append(output.hidden_states[-2])  # penultimate layer
        return dict(text_states=torch.cat(states, dim=-1),
                    text_embeds=output.text_embeds)

    def unet_conditions(self, encodings: dict, time_ids: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, dict]:
        """States, and ``{'text_embeds': (B, D_pool), 'time_ids': (B, 6)}``.

        Args:
            encodings: What :meth:`forward` returned.
            time_ids: (B, 6) original size, crop top-left and target size per
                sample, from the data pipeline's ``ComputeTimeIds``.
        """
        if time_ids is None:
            raise UserError(
                'SDXL needs per-sample time ids: add ComputeTimeIds to the '
                "data pipeline and 'time_ids' to PackInputs' input_keys")
        pooled = encodings['text_embeds']
        return encodings['text_states'], dict(
            text_embeds=pooled, time_ids=time_ids.to(pooled.dtype))
