"""Render images/mountains.jpg: a mountain landscape at sunrise (512 × 512).

Procedural (numpy + Pillow, fixed seed), so the evaluation set has a mountain
landscape whose licence is ours to give (CC0, like the rest of this folder's
own files). Run from this folder: ``python render_mountains.py``.
"""

import numpy as np
from PIL import Image, ImageFilter

SIZE = 512
rng = np.random.default_rng(7)
y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE


def ridge(base: float, roughness: float, octaves: int = 6) -> np.ndarray:
    """A mountain skyline: height (fraction of the image) per column."""
    height = np.full(SIZE, base)
    for octave in range(octaves):
        frequency = 2**octave
        phase = rng.uniform(0, 2 * np.pi, 3)
        columns = np.linspace(0, 1, SIZE)
        height += (
            roughness
            / (octave + 1) ** 1.7
            * sum(
                np.sin(2 * np.pi * frequency * (k + 1) * columns + phase[k]) / (k + 1)
                for k in range(3)
            )
        )
    return height


# Sky: deep blue overhead to warm orange at the horizon, and a soft sun.
top, horizon = np.array([40, 70, 140]), np.array([250, 170, 110])
t = np.clip(y / 0.62, 0, 1)[..., None] ** 1.4
image = (1 - t) * top + t * horizon
sun = np.exp(-(((x - 0.7) ** 2 + (y - 0.3) ** 2) / 0.002))[..., None]
image = image + sun * np.array([255, 230, 180]) * 0.9

# Ridges, far to near: bluer and lighter far away (atmospheric perspective).
layers = [
    (0.42, 0.08, (120, 130, 170)),
    (0.50, 0.06, (80, 95, 130)),
    (0.60, 0.05, (50, 70, 80)),
    (0.70, 0.03, (30, 55, 45)),
]
for index, (base, roughness, colour) in enumerate(layers):
    skyline = 1 - ridge(1 - base, roughness)
    mask = y >= skyline[None, :]
    shade = np.array(colour) * (1 - 0.25 * (y - skyline[None, :]).clip(0, 1))[..., None]
    if index == 0:  # snow on the highest, farthest peaks
        snow = (y < skyline[None, :] + 0.035) & (skyline[None, :] < 0.33)
        shade = np.where(snow[..., None], np.array([235, 235, 245]), shade)
    image = np.where(mask[..., None], shade, image)

# A lake below the nearest ridge, reflecting the scene with ripples.
water = int(SIZE * 0.78)
reflection = image[water - (SIZE - water) * 2 : water][::-2][: SIZE - water]
ripple = 1 + 0.06 * np.sin(np.arange(SIZE - water) * 1.7)[:, None, None]
image[water:] = reflection * 0.75 * ripple + np.array([10, 25, 40]) * 0.25
image = Image.fromarray(image.clip(0, 255).astype(np.uint8))
image.filter(ImageFilter.GaussianBlur(0.6)).save('images/mountains.jpg', quality=90)
