"""What a face embedder gives: the faces of an image, each with its identity
embedding and its aligned crop (the two inputs of the FaceID adapters).

The alignment is insightface's ``face_align.norm_crop``: the similarity
transform (Umeyama) that takes the five landmarks (eyes, nose, mouth corners)
onto ArcFace's template, scaled to the crop size, then ``cv2.warpAffine``
with a black border. The official FaceID-Plus code crops 224 × 224 for the
CLIP branch.
"""

import functools
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import UserError
from ..registry import FACE_EMBEDDERS

__all__ = [
    'ARCFACE_TEMPLATE',
    'CROP_SIZE',
    'DEFAULT_EMBEDDER',
    'EMBEDDING_DIM',
    'DetectedFace',
    'FaceEmbedder',
    'align_face',
    'build_face_embedder',
    'get_face_embedder',
    'largest_face',
    'similarity_transform',
]

EMBEDDING_DIM = 512  # ArcFace (buffalo_l's w600k_r50)
CROP_SIZE = 224  # the aligned crop the FaceID-Plus CLIP branch reads
DEFAULT_EMBEDDER = 'InsightFaceEmbedder'  # buffalo_l, as the official FaceID
# Where insightface's norm_crop puts the five landmarks in a 112 × 112 crop.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],  # left eye (in the image)
        [73.5318, 51.5014],  # right eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # left mouth corner
        [70.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class DetectedFace:
    """One face found in an image.

    Attributes:
        embedding: (512,) float32 identity embedding of unit length (as
            insightface's ``normed_embedding``; the embedder's
            ``embedding_dim`` wide).
        crop: The aligned face, an RGB image of 224 × 224.
        bbox: ``(x0, y0, x1, y1)`` in pixels of the image.
        score: Detection confidence in [0, 1].
    """

    embedding: np.ndarray
    crop: Image.Image
    bbox: tuple[float, float, float, float]
    score: float

    @property
    def area(self) -> float:
        """The box's area in square pixels."""
        x0, y0, x1, y1 = self.bbox
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


class FaceEmbedder:
    """Finds faces and embeds them; subclasses implement :meth:`faces`.

    Attributes:
        config: The dict that builds this embedder (``type`` and arguments);
            outputs made by embedders of different configs are not mixed.
        embedding_dim: Width of its embeddings (512: ArcFace's).
    """

    config: dict
    embedding_dim: int = EMBEDDING_DIM

    def faces(self, image: Image.Image) -> list[DetectedFace]:
        """Every face of ``image`` (RGB), in no particular order."""
        raise NotImplementedError


def largest_face(faces: list[DetectedFace]) -> DetectedFace | None:
    """The face with the largest box (None for none)."""
    return max(faces, key=lambda face: face.area, default=None)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The (2, 3) least-squares similarity transform (rotation, uniform
    scale, translation) taking points ``src`` (N, 2) onto ``dst`` (Umeyama
    1991, as ``skimage.transform.SimilarityTransform.estimate``)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection: undo it
        d[1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = (s @ d) / src_c.var(axis=0).sum()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE
) -> np.ndarray:
    """``insightface.utils.face_align.norm_crop(image, landmarks, size)``:
    the (size, size, C) crop whose five landmarks sit on the ArcFace
    template (``size`` a multiple of 112 or 128, as there)."""
    import cv2

    if size % 112 == 0:
        template = ARCFACE_TEMPLATE * (size / 112)
    elif size % 128 == 0:
        template = ARCFACE_TEMPLATE * (size / 128)
        template[:, 0] += 8 * size / 128
    else:
        raise ValueError(f'crop size {size} is not a multiple of 112 or 128')
    matrix = similarity_transform(np.asarray(landmarks).reshape(5, 2), template)
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


def build_face_embedder(cfg: dict | None = None) -> FaceEmbedder:
    """The embedder a config names (default: insightface's ``buffalo_l``);
    an unknown ``type`` is one line naming the known ones."""
    cfg = dict(cfg or dict(type=DEFAULT_EMBEDDER))
    kind = cfg.get('type')
    FACE_EMBEDDERS.import_from_location()
    if kind not in FACE_EMBEDDERS.module_dict:
        known = ', '.join(sorted(FACE_EMBEDDERS.module_dict))
        raise UserError(f'face_embedder: unknown type {kind!r} (known: {known})')
    arguments = {k: v for k, v in cfg.items() if k != 'type'}
    try:
        embedder = FACE_EMBEDDERS.module_dict[kind](**arguments)
    except TypeError as err:
        raise UserError(f'face_embedder {kind}: {err}') from None
    embedder.config = cfg
    return embedder


@functools.lru_cache(maxsize=2)
def _cached(key: str) -> FaceEmbedder:
    return build_face_embedder(json.loads(key))


def get_face_embedder(cfg: dict | None = None) -> FaceEmbedder:
    """:func:`build_face_embedder`, built once per process and config."""
    return _cached(json.dumps(dict(cfg or {}), sort_keys=True))
