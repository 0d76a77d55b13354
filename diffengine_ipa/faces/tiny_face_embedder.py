"""A face embedder that needs no weights, for tests and the demo: its
"faces" are drawings (:func:`draw_face`: a skin-coloured disc with two dark
eye dots), its embedding a seeded random network of the aligned crop.

It keeps the real one's contract: faces are found, counted and aligned the
same way (five landmarks onto the ArcFace template, 224 × 224), and the same
face drawn at another place or size embeds to nearly the same unit vector.
"""

import math

import numpy as np
from PIL import Image, ImageDraw

from ..registry import FACE_EMBEDDERS
from .face_embedder import (
    ARCFACE_TEMPLATE,
    CROP_SIZE,
    EMBEDDING_DIM,
    DetectedFace,
    FaceEmbedder,
    align_face,
)

__all__ = ['TinyFaceEmbedder', 'draw_face', 'SKIN']

SKIN = (224, 172, 140)
EYE = (30, 20, 20)
_EYE_SPACING = 0.35  # eye centres at ±0.35 r from the disc's centre
_EYE_HEIGHT = 0.2  # and 0.2 r above it
# The nose and mouth corners from the eyes, in eye distances along and
# across the line between them (read off the ArcFace template).
_EYES = ARCFACE_TEMPLATE[:2]
_EYE_DISTANCE = float(np.linalg.norm(_EYES[1] - _EYES[0]))
_OFFSETS = (ARCFACE_TEMPLATE[2:] - _EYES.mean(0)) / _EYE_DISTANCE


def draw_face(
    image: Image.Image,
    center: tuple[float, float],
    radius: float,
    skin: tuple[int, int, int] = SKIN,
    eye: tuple[int, int, int] = EYE,
    eye_spacing: float = _EYE_SPACING,
) -> Image.Image:
    """Draw one face that :class:`TinyFaceEmbedder` finds, in place; returns
    ``image``. Faces differ by ``skin``, ``eye`` colour and ``eye_spacing``
    (a fraction of ``radius``)."""
    draw = ImageDraw.Draw(image)
    x, y = center
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=skin)
    dot = max(radius * 0.1, 1.5)
    for side in (-1, 1):
        ex, ey = x + side * eye_spacing * radius, y - _EYE_HEIGHT * radius
        draw.ellipse((ex - dot, ey - dot, ex + dot, ey + dot), fill=eye)
    return image


@FACE_EMBEDDERS.register_module()
class TinyFaceEmbedder(FaceEmbedder):
    """Finds :func:`draw_face` faces; embeds each aligned crop with a seeded
    random two-layer network (no weights to download).

    Args:
        seed: Seed of the network's weights.
        min_radius: Skin blobs narrower than twice this are not faces.
        resolution: Side the crop is resized to before the network.
    """

    def __init__(
        self, seed: int = 0, min_radius: int = 6, resolution: int = 32
    ) -> None:
        rng = np.random.default_rng(seed)
        inputs = resolution * resolution * 3
        self.resolution, self.min_radius = resolution, min_radius
        self.w1 = rng.standard_normal((inputs, 256)).astype(np.float32)
        self.w1 /= math.sqrt(inputs) / 4
        self.w2 = rng.standard_normal((256, EMBEDDING_DIM)).astype(np.float32)

    def embed(self, crop: Image.Image) -> np.ndarray:
        """(512,) unit vector of an aligned crop."""
        small = crop.resize((self.resolution, self.resolution), Image.BILINEAR)
        x = np.asarray(small, dtype=np.float32).reshape(-1) / 127.5 - 1
        embedding = np.tanh(x @ self.w1) @ self.w2
        return (embedding / np.linalg.norm(embedding)).astype(np.float32)

    def faces(self, image: Image.Image) -> list[DetectedFace]:
        import cv2

        rgb = np.asarray(image.convert('RGB'))
        r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
        skin = (r >= 140) & (r - g >= 20) & (g - b >= 10) & (b >= 50)
        dark = rgb.max(axis=-1) < 90
        count, _, stats, _ = cv2.connectedComponentsWithStats(
            skin.astype(np.uint8), connectivity=8
        )
        found = []
        for x, y, w, h, area in stats[1:count]:
            if min(w, h) < 2 * self.min_radius:
                continue
            eyes = self._eyes(dark[y : y + h, x : x + w], w, h)
            if eyes is None:
                continue  # a skin-coloured blob, no face
            eyes += (x, y)
            landmarks = _landmarks(eyes)
            crop = Image.fromarray(align_face(rgb, landmarks, CROP_SIZE))
            found.append(
                DetectedFace(
                    embedding=self.embed(crop),
                    crop=crop,
                    bbox=(float(x), float(y), float(x + w), float(y + h)),
                    score=min(1.0, float(area) / (math.pi / 4 * w * h)),
                )
            )
        return found

    @staticmethod
    def _eyes(dark: np.ndarray, w: int, h: int) -> np.ndarray | None:
        """The centres of the dark dots in the upper half of a disc's box,
        left and right of its middle (None unless there is one on each side)."""
        ys, xs = np.nonzero(dark[: h // 2])
        inside = (xs - w / 2) ** 2 + (ys - h / 2) ** 2 < (min(w, h) / 2) ** 2
        xs, ys = xs[inside], ys[inside]
        left, right = xs < w / 2, xs >= w / 2
        if left.sum() < 2 or right.sum() < 2:
            return None
        return np.array(
            [
                [xs[left].mean(), ys[left].mean()],
                [xs[right].mean(), ys[right].mean()],
            ],
            dtype=np.float64,
        )


def _landmarks(eyes: np.ndarray) -> np.ndarray:
    """Five landmarks from the two eyes, placed as on the ArcFace template."""
    along = eyes[1] - eyes[0]
    across = np.array([-along[1], along[0]])  # downwards in the image
    middle = eyes.mean(0)
    rest = middle + _OFFSETS[:, :1] * along + _OFFSETS[:, 1:] * across
    return np.concatenate([eyes, rest]).astype(np.float32)
