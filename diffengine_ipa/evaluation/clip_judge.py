"""The CLIP model that scores generated images (not the adapter's encoder)."""

import functools

import torch
import torch.nn.functional as F
from PIL import Image

from ..models.model_sources import load_component

__all__ = ['CLIPJudge', 'get_judge']


class CLIPJudge:
    """Unit-length CLIP embeddings of images and texts.

    Args:
        source: Hub id or folder of a ``CLIPModel`` with its processor
            (default in configs: ``openai/clip-vit-large-patch14``).
        device: Where to run it.
    """

    def __init__(self, source: str, device: str = 'cpu') -> None:
        from transformers import CLIPModel, CLIPProcessor

        field = 'val_evaluator.clip_model'
        self.source = source
        self.device = device
        self.model = (
            load_component(CLIPModel, source, field=field, component='clip')
            .eval()
            .to(device)
        )
        self.processor = load_component(CLIPProcessor, source, field=field)

    @torch.no_grad()
    def image_embeds(self, images: list[Image.Image]) -> torch.Tensor:
        """(N, D) unit vectors."""
        pixels = self.processor(images=images, return_tensors='pt').pixel_values
        features = self.model.get_image_features(pixel_values=pixels.to(self.device))
        return F.normalize(_tensor(features), dim=-1).cpu()

    @torch.no_grad()
    def text_embeds(self, texts: list[str]) -> torch.Tensor:
        """(N, D) unit vectors; texts longer than CLIP's 77 tokens are cut."""
        tokens = self.processor(
            text=texts, padding=True, truncation=True, return_tensors='pt'
        ).to(self.device)
        features = self.model.get_text_features(
            input_ids=tokens.input_ids, attention_mask=tokens.attention_mask
        )
        return F.normalize(_tensor(features), dim=-1).cpu()


def _tensor(features) -> torch.Tensor:
    """transformers 5 may wrap the projected features in an output object."""
    if isinstance(features, torch.Tensor):
        return features
    return features.pooler_output


@functools.lru_cache(maxsize=2)
def get_judge(source: str, device: str = 'cpu') -> CLIPJudge:
    """One judge per model and device, loaded once per process."""
    return CLIPJudge(source, device)
