"""The shapes world's face embedder: a "face" is the one saturated shape of
an image, its "identity" the embedding of the world's own pretrained CLIP
vision tower (frozen), so FaceID can be trained and judged on a CPU
(docs/faceid.md, "It learns").

Detection reads the world's definition as its judge does: the shape's pixels
are those of chroma ≥ 0.3 (the background's is ≤ 0.12); each 8-connected
blob of them covering ≥ 2 % of the image is one "face". A plain background
has none, two shapes are two.
"""

import os.path as osp

import numpy as np
from PIL import Image

from ..errors import ModelSourceError
from ..registry import FACE_EMBEDDERS
from .face_embedder import CROP_SIZE, DetectedFace, FaceEmbedder

__all__ = ['ShapesFaceEmbedder']

DEFAULT_ENCODER = 'work_dirs/shapes_world/sd15/image_encoder'  # tools/shapes_world.py
_MASK_CHROMA = 0.3  # as the world's classifier (shapes_world.world.classify)
_MIN_FRACTION = 0.02  # smaller blobs are anti-aliasing or noise, not a shape


@FACE_EMBEDDERS.register_module()
class ShapesFaceEmbedder(FaceEmbedder):
    """Finds the shapes of a shapes-world image; embeds the image with the
    world's CLIP vision tower (``image_embeds``, its projection, unit length).

    Args:
        encoder: Folder of the ``CLIPVisionModelWithProjection`` (and its
            ``preprocessor_config.json``).
        min_fraction: Blobs covering less of the image are not shapes.
    """

    def __init__(
        self, encoder: str = DEFAULT_ENCODER, min_fraction: float = _MIN_FRACTION
    ) -> None:
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        if not osp.isfile(osp.join(encoder, 'config.json')):
            raise ModelSourceError(
                f'{encoder}: no CLIP vision tower (config.json); write the '
                'world first: python tools/shapes_world.py'
            )
        self.model = CLIPVisionModelWithProjection.from_pretrained(encoder).eval()
        self.model.requires_grad_(False)
        self.processor = CLIPImageProcessor.from_pretrained(encoder)
        self.embedding_dim = self.model.config.projection_dim
        self.min_fraction = min_fraction

    def embed(self, image: Image.Image) -> np.ndarray:
        """(projection_dim,) unit vector of an image."""
        import torch

        pixels = self.processor(images=image, return_tensors='pt').pixel_values
        with torch.no_grad():
            embedding = self.model(pixel_values=pixels).image_embeds[0].float()
        return (embedding / embedding.norm()).numpy().astype(np.float32)

    def faces(self, image: Image.Image) -> list[DetectedFace]:
        import cv2

        rgb = np.asarray(image.convert('RGB'))
        scaled = rgb.astype(np.float32) / 255.0
        mask = scaled.max(axis=2) - scaled.min(axis=2) >= _MASK_CHROMA
        count, _, stats, _ = cv2.connectedComponentsWithStats(
            mask.astype(np.uint8), connectivity=8
        )
        blobs = [
            (int(x), int(y), int(w), int(h), int(area))
            for x, y, w, h, area in stats[1:count]
            if area >= self.min_fraction * mask.size
        ]
        if not blobs:
            return []
        embedding = self.embed(image.convert('RGB'))  # the whole image, as trained
        return [
            DetectedFace(
                embedding=embedding,
                crop=_square_crop(image.convert('RGB'), x, y, w, h),
                bbox=(float(x), float(y), float(x + w), float(y + h)),
                score=1.0,
            )
            for x, y, w, h, _ in blobs
        ]


def _square_crop(image: Image.Image, x: int, y: int, w: int, h: int) -> Image.Image:
    """The square around a blob's box, resized to the FaceID-Plus crop."""
    side = max(w, h)
    left, top = x + w / 2 - side / 2, y + h / 2 - side / 2
    box = (int(left), int(top), int(left + side), int(top + side))
    return image.crop(box).resize((CROP_SIZE, CROP_SIZE), Image.Resampling.BICUBIC)
