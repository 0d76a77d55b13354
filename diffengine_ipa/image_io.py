"""Read user images the same way everywhere (training data, references).

Unusual but valid images are converted, not rejected: grayscale, palette,
RGBA (composited on white), CMYK, 16-bit, EXIF-rotated. PIL's 89-megapixel
decompression-bomb guard is replaced, deliberately, by a higher cap
(:data:`MAX_IMAGE_PIXELS`), checked from the header before any decoding.
"""
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

__all__ = ['MAX_IMAGE_PIXELS', 'open_image', 'to_rgb', 'read_rgb_image',
           'check_image']

MAX_IMAGE_PIXELS = 16384 * 16384  # 268 MP; PIL's own guard stops at 89 MP
_SIXTEEN_BIT = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I')


def open_image(path: str) -> Image.Image:
    """``path`` opened lazily (header only); :class:`ImageError` if it is
    missing, empty, not an image or over the pixel cap."""
    try:
        if os.path.getsize(path) == 0:
            raise ImageError(path, 'zero-byte file')
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:  # our cap below replaces PIL's guard
            image = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    except FileNotFoundError:
        raise ImageError(path, 'no such file') from None
    except UnidentifiedImageError:
        raise ImageError(path, 'not an image (PIL cannot identify it)') from None
    except OSError as err:
        raise ImageError(path, f'cannot read ({err.strerror or err})') from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageError(path, f'too large ({width}x{height} px; the cap is '
                         f'{MAX_IMAGE_PIXELS:,} px)')
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy: 16-bit scaled down, transparency on white."""
    if image.mode in _SIXTEEN_BIT:
        gray = np.asarray(image, dtype=np.float32) / 257
        image = Image.fromarray(gray.clip(0, 255).round().astype(np.uint8))
    if image.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or (
            'transparency' in image.info):
        rgba = image.convert('RGBA')
        white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert('RGB')
    return image.convert('RGB')


def read_rgb_image(path: str) -> Image.Image:
    """``path`` as an upright (EXIF-rotated) 8-bit RGB image; one-line errors."""
    try:
        with open_image(path) as image:
            return to_rgb(ImageOps.exif_transpose(image))
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageError(path, f'cannot read image ({err})') from None


def check_image(path: str, min_side: int = 1) -> tuple[int, int]:
    """Decode ``path`` (cheaply: JPEGs at reduced scale) to catch truncated
    or corrupt files; its ``(width, height)``, or :class:`ImageError`."""
    with open_image(path) as image:
        width, height = image.size
        if min(width, height) < min_side:
            raise ImageError(path, f'too small ({width}x{height} px; '
                             f'min_image_side is {min_side})')
        try:
            if image.format == 'JPEG':  # DCT scaling still reads every byte
                image.draft('RGB', (max(min_side, 64), max(min_side, 64)))
            image.load()
        except (OSError, ValueError, SyntaxError) as err:
            raise ImageError(path, f'truncated or corrupt image ({err})'
                             ) from None
    return width, height
