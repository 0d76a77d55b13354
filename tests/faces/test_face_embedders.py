"""Face embedders: the interface, the weightless one's faces, the alignment."""

import numpy as np
import pytest
from PIL import Image

from diffengine_ipa.errors import UserError
from diffengine_ipa.faces import (
    DetectedFace,
    TinyFaceEmbedder,
    align_face,
    build_face_embedder,
    draw_face,
    largest_face,
    similarity_transform,
)
from diffengine_ipa.faces.face_embedder import ARCFACE_TEMPLATE


def picture(*faces: dict, size: int = 160) -> Image.Image:
    image = Image.new('RGB', (size, size), (60, 120, 200))
    for face in faces:
        draw_face(image, **face)
    return image


def test_tiny_embedder_finds_aligns_and_embeds_drawn_faces():
    embedder = build_face_embedder(dict(type='TinyFaceEmbedder', seed=0))
    assert isinstance(embedder, TinyFaceEmbedder)
    assert embedder.config == dict(type='TinyFaceEmbedder', seed=0)
    assert embedder.faces(picture()) == []
    (face,) = embedder.faces(picture(dict(center=(80, 80), radius=50)))
    assert isinstance(face, DetectedFace) and face.crop.size == (224, 224)
    assert face.embedding.shape == (512,) and face.embedding.dtype == np.float32
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
    assert face.bbox == pytest.approx((30, 30, 131, 131), abs=1)
    assert 0.9 < face.score <= 1.0
    # The eyes land where ArcFace's template puts them (scaled to 224).
    crop = np.asarray(face.crop)
    for x, y in ARCFACE_TEMPLATE[:2] * 2:
        assert crop[round(y), round(x)].max() < 90  # an eye dot's pixel
    assert tuple(crop[150, 112]) == pytest.approx((224, 172, 140), abs=3)  # skin

    # The same face elsewhere, smaller, through JPEG: the same identity.
    moved = picture(dict(center=(100, 60), radius=35))
    moved.save(buffer := __import__('io').BytesIO(), 'JPEG', quality=90)
    (again,) = embedder.faces(Image.open(buffer))
    assert float(face.embedding @ again.embedding) > 0.97
    for other in (dict(skin=(190, 130, 95)), dict(eye_spacing=0.25)):
        (different,) = embedder.faces(
            picture(dict(center=(80, 80), radius=50, **other))
        )
        assert float(face.embedding @ different.embedding) < 0.9
    # Another seed, another network.
    reseeded = build_face_embedder(dict(type='TinyFaceEmbedder', seed=1))
    assert float(reseeded.embed(face.crop) @ face.embedding) < 0.5

    two = embedder.faces(
        picture(dict(center=(40, 40), radius=25), dict(center=(110, 110), radius=40))
    )
    assert len(two) == 2
    assert largest_face(two).bbox == pytest.approx((70, 70, 151, 151), abs=1)
    assert largest_face([]) is None
    # A skin-coloured disc without eyes is no face.
    blob = picture()
    blob.paste((224, 172, 140), (20, 20, 90, 90))
    assert embedder.faces(blob) == []


def test_alignment_is_insightface_norm_crop():
    rng = np.random.default_rng(0)
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    )
    points = rng.uniform(0, 100, (5, 2))
    matrix = similarity_transform(points, scale * points @ rotation.T + shift)
    assert matrix[:, :2] == pytest.approx(scale * rotation, abs=1e-9)
    assert matrix[:, 2] == pytest.approx(shift, abs=1e-9)
    # The template itself, at 112, maps onto itself; at 224 onto twice it.
    image = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    assert (align_face(image, ARCFACE_TEMPLATE, 112) == image).all()
    assert align_face(image, ARCFACE_TEMPLATE, 224).shape == (224, 224, 3)
    with pytest.raises(ValueError, match='not a multiple of 112 or 128'):
        align_face(image, ARCFACE_TEMPLATE, 100)


def test_config_errors_are_one_line():
    with pytest.raises(UserError, match=r"unknown type 'Nope' \(known: .*TinyFace"):
        build_face_embedder(dict(type='Nope'))
    with pytest.raises(UserError, match='TinyFaceEmbedder: .*unexpected keyword'):
        build_face_embedder(dict(type='TinyFaceEmbedder', sed=1))


def test_insightface_embedder_names_what_is_missing(tmp_path):
    try:
        import insightface  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match=r'insightface .*pip install \.\[faces\]'):
            build_face_embedder(None)  # the default: insightface's buffalo_l
        return
    with pytest.raises(UserError, match='no insightface model files'):
        build_face_embedder(dict(type='InsightFaceEmbedder', root=str(tmp_path)))
