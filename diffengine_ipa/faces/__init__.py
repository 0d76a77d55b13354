"""Faces for the FaceID adapters: detection, alignment and identity
embeddings (insightface, or a weightless stand-in for tests), the data
preparation that stores them with the records, and face similarity."""

from .face_embedder import (
    CROP_SIZE,
    DEFAULT_EMBEDDER,
    EMBEDDING_DIM,
    DetectedFace,
    FaceEmbedder,
    align_face,
    build_face_embedder,
    get_face_embedder,
    largest_face,
    similarity_transform,
)
from .insightface_embedder import InsightFaceEmbedder
from .shapes_face_embedder import ShapesFaceEmbedder
from .tiny_face_embedder import TinyFaceEmbedder, draw_face

__all__ = [
    'CROP_SIZE',
    'DEFAULT_EMBEDDER',
    'EMBEDDING_DIM',
    'DetectedFace',
    'FaceEmbedder',
    'InsightFaceEmbedder',
    'ShapesFaceEmbedder',
    'TinyFaceEmbedder',
    'align_face',
    'build_face_embedder',
    'draw_face',
    'get_face_embedder',
    'largest_face',
    'similarity_transform',
]
