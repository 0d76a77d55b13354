"""The shapes world: one saturated shape on an unsaturated background.

A scene is one shape (:data:`SHAPES`) in one of the world's hues
(:data:`HUES`, saturation and value ≥ 0.8, hues 60° apart) on a background of
saturation ≤ 0.12 and varying lightness, at a varying position and size.
:func:`classify` reads an image back from that definition alone (no learned
model): the colour is the mean hue of the saturated pixels, the shape comes
from how the saturated mask fills its bounding box (a square fills it, a
circle π/4 of it, an upward triangle half, most of it in the lower half).
"""

import colorsys
import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    'HUES',
    'SHAPES',
    'DEFAULT_SIZE',
    'Scene',
    'Classification',
    'sample_scene',
    'reference_scene',
    'uncoloured',
    'render',
    'draw',
    'colour_caption',
    'shape_caption',
    'classify',
    'chance_levels',
]

DEFAULT_SIZE = 32
# name -> hue in degrees; 60° apart, so nearest-hue decoding tolerates ±30°.
HUES: dict[str, float] = {
    'red': 0.0,
    'yellow': 60.0,
    'green': 120.0,
    'cyan': 180.0,
    'blue': 240.0,
    'magenta': 300.0,
}
SHAPES: tuple[str, ...] = ('circle', 'square', 'triangle')

_HUE_JITTER = 5.0  # degrees either side of the named hue
_SHAPE_SV = (0.8, 1.0)  # saturation and value of the shape
_BACKGROUND_S = 0.12  # at most; the definition allows 0.15
_BACKGROUND_V = (0.15, 0.95)
_SIZE = (0.4, 0.75)  # shape extent, a fraction of the image side
_SUPERSAMPLE = 4  # drawn large, then reduced: anti-aliased edges
# A pixel belongs to the shape when its chroma (max - min of RGB) is at
# least this: the shape's chroma is ≥ 0.64, the background's ≤ 0.12.
_MASK_CHROMA = 0.3
_MIN_MASK_FRACTION = 0.02  # fewer saturated pixels than this: no shape


@dataclass(frozen=True)
class Scene:
    """Everything that decides one image of the world.

    Args:
        hue: a key of :data:`HUES`.
        shape: one of :data:`SHAPES`.
        center: the shape's centre (x, y), fractions of the image side.
        extent: the shape's width and height, a fraction of the side.
        hue_degrees: the exact hue drawn (the named hue ± a few degrees).
        saturation: the shape's HSV saturation.
        value: the shape's HSV value.
        background: the background's HSV (hue in degrees, s, v).
    """

    hue: str
    shape: str
    center: tuple[float, float]
    extent: float
    hue_degrees: float
    saturation: float
    value: float
    background: tuple[float, float, float]


class Classification(NamedTuple):
    """What :func:`classify` reads from an image (None: no shape found)."""

    hue: str | None
    shape: str | None


def colour_caption(hue: str, shape: str) -> str:
    """The pretraining caption, naming colour and shape: 'a red circle'."""
    return f'a {hue} {shape}'


def shape_caption(shape: str) -> str:
    """The adapter-training caption, naming only the shape: 'a circle'.

    The colour is left out so that it can only come from the reference.
    """
    return f'a {shape}'


def sample_scene(
    rng: np.random.Generator, hue: str | None = None, shape: str | None = None
) -> Scene:
    """Draw a random scene; ``hue`` and ``shape`` are random unless given."""
    hue = hue if hue is not None else str(rng.choice(list(HUES)))
    shape = shape if shape is not None else str(rng.choice(SHAPES))
    _check(hue, shape)
    extent = float(rng.uniform(*_SIZE))
    margin = extent / 2 + 0.03
    center = (
        float(rng.uniform(margin, 1 - margin)),
        float(rng.uniform(margin, 1 - margin)),
    )
    return Scene(
        hue=hue,
        shape=shape,
        center=center,
        extent=extent,
        hue_degrees=(HUES[hue] + float(rng.uniform(-_HUE_JITTER, _HUE_JITTER))) % 360,
        saturation=float(rng.uniform(*_SHAPE_SV)),
        value=float(rng.uniform(*_SHAPE_SV)),
        background=(
            float(rng.uniform(0, 360)),
            float(rng.uniform(0, _BACKGROUND_S)),
            float(rng.uniform(*_BACKGROUND_V)),
        ),
    )


def reference_scene(rng: np.random.Generator, target: Scene) -> Scene:
    """A scene of the target's colour and shape that differs from it in
    position, size and background lightness (each by a clear margin)."""
    while True:
        scene = sample_scene(rng, target.hue, target.shape)
        moved = math.dist(scene.center, target.center) >= 0.12
        resized = abs(scene.extent - target.extent) >= 0.08
        relit = abs(scene.background[2] - target.background[2]) >= 0.15
        if moved and resized and relit:
            return scene


def uncoloured(scene: Scene) -> Scene:
    """The scene with its shape in grey (FLUX.1 Kontext's input image: the
    layout to keep, no colour): black on a light background, white on a
    dark one, so it stands out by at least 0.4 of value. :func:`classify`
    finds no shape in it (no chroma)."""
    value = 0.0 if scene.background[2] >= 0.55 else 1.0
    return replace(scene, saturation=0.0, value=value)


def render(scene: Scene, size: int = DEFAULT_SIZE) -> Image.Image:
    """The RGB image of ``scene``, ``size`` pixels square."""
    big = size * _SUPERSAMPLE
    image = Image.new('RGB', (big, big), _rgb(*scene.background))
    half = scene.extent * big / 2
    cx, cy = scene.center[0] * big, scene.center[1] * big
    box = (cx - half, cy - half, cx + half, cy + half)
    fill = _rgb(scene.hue_degrees, scene.saturation, scene.value)
    pen = ImageDraw.Draw(image)
    if scene.shape == 'circle':
        pen.ellipse(box, fill=fill)
    elif scene.shape == 'square':
        pen.rectangle(box, fill=fill)
    else:  # an upward isosceles triangle filling the box
        pen.polygon(
            [(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=fill
        )
    return image.resize((size, size), Image.Resampling.BOX)


def draw(
    rng: np.random.Generator,
    hue: str | None = None,
    shape: str | None = None,
    size: int = DEFAULT_SIZE,
) -> Image.Image:
    """A random image of the world (of ``hue`` and ``shape`` when given)."""
    return render(sample_scene(rng, hue, shape), size)


def classify(image: Image.Image) -> Classification:
    """Read the colour and the shape of an image from the world's definition.

    Robust to the blur and noise of generated images: the mask is a chroma
    threshold, the bounding box is taken between percentiles of the mask.
    """
    rgb = np.asarray(image.convert('RGB'), dtype=np.float64) / 255.0
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    mask = chroma >= _MASK_CHROMA
    if mask.mean() < _MIN_MASK_FRACTION:
        return Classification(None, None)
    return Classification(_hue_name(rgb[mask], chroma[mask]), _shape_name(mask))


def chance_levels() -> dict[str, float]:
    """The match rates of a guess: one over the number of hues / shapes."""
    return {'colour': 1 / len(HUES), 'shape': 1 / len(SHAPES)}


def _hue_name(pixels: np.ndarray, weights: np.ndarray) -> str:
    """The world hue nearest to the chroma-weighted circular mean hue."""
    hues = np.array([colorsys.rgb_to_hsv(*p)[0] for p in pixels]) * 2 * np.pi
    mean = (
        math.degrees(
            math.atan2((weights * np.sin(hues)).sum(), (weights * np.cos(hues)).sum())
        )
        % 360
    )
    return min(HUES, key=lambda name: _angle(HUES[name], mean))


def _shape_name(mask: np.ndarray) -> str:
    """Square, circle or triangle from the mask's fill and balance."""
    ys, xs = np.nonzero(mask)
    top, bottom = np.percentile(ys, [1, 99])
    left, right = np.percentile(xs, [1, 99])
    inside = mask[
        int(round(top)) : int(round(bottom)) + 1,
        int(round(left)) : int(round(right)) + 1,
    ]
    height = inside.shape[0]
    upper = inside[: height // 2].sum()
    lower = inside[height - height // 2 :].sum()
    # an upward triangle holds 3/4 of its area in its lower half
    if lower >= 1.8 * max(upper, 1):
        return 'triangle'
    fill = inside.mean()
    # a square fills its box (1.0), a circle π/4 ≈ 0.785: split between
    return 'square' if fill >= 0.89 else 'circle'


def _angle(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def _rgb(hue_degrees: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue_degrees / 360, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _check(hue: str, shape: str) -> None:
    if hue not in HUES:
        raise ValueError(f'unknown hue {hue!r}; the world has {list(HUES)}')
    if shape not in SHAPES:
        raise ValueError(f'unknown shape {shape!r}; the world has {SHAPES}')
