"""Read user images the same way everywhere (training data, references).

Unusual but valid images are converted, not rejected: grayscale, palette,
RGBA (composited on white), CMYK, 16-bit, 32-bit integer and float (scaled
from the range their values use: [0, 1], [0, 255], [0, 65535] or the full
32 bits), EXIF-rotated. Images that would decode to something other than
what they hold are rejected: a JPEG without image data or without its
end-of-image marker (header-only, truncated or zero-filled files, which PIL
decodes to flat gray), a float image with NaN/Inf or negative values. PIL's
89-megapixel decompression-bomb guard is replaced, deliberately, by a higher
cap (:data:`MAX_IMAGE_PIXELS`), checked from the header before any decoding.
"""

import io
import os
import re

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

__all__ = [
    'MAX_IMAGE_PIXELS',
    'open_image',
    'to_rgb',
    'read_rgb_image',
    'check_image',
    'jpeg_problem',
]

MAX_IMAGE_PIXELS = 16384 * 16384  # 268 MP; PIL's own guard stops at 89 MP
_SIXTEEN_BIT = ('I;16', 'I;16L', 'I;16B', 'I;16N')
# In a JPEG's entropy-coded data 0xFF is followed by 0x00 (stuffing), a
# restart marker (0xD0-0xD7) or more 0xFF (fill); anything else is a marker.
_MARKER_IN_SCAN = re.compile(rb'\xff[^\x00\xd0-\xd7\xff]')
_SEGMENT_MARKERS = set(range(0xC0, 0xD0)) | set(range(0xDA, 0xF0)) | {0xFE}


def open_image(path: str, data: bytes | None = None) -> Image.Image:
    """``path`` opened lazily (header only); :class:`ImageError` if it is
    missing, empty, not an image or over the pixel cap. ``data``: the
    image's bytes (a shard member, a dataset cell), ``path`` then only names
    it in messages."""
    try:
        if (len(data) if data is not None else os.path.getsize(path)) == 0:
            raise ImageError(
                path,
                'zero-byte file' if data is None else 'empty image bytes (0 bytes)',
            )
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:  # our cap below replaces PIL's guard
            image = Image.open(path if data is None else io.BytesIO(data))
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
        raise ImageError(
            path, f'too large ({width}x{height} px; the cap is {MAX_IMAGE_PIXELS:,} px)'
        )
    return image


def jpeg_problem(data: bytes) -> str | None:
    """Why a JPEG file would not decode to the picture it was meant to hold
    (PIL fills what is missing with gray and says nothing), if it would not:
    its markers are walked to the end-of-image marker, and every scan must
    hold image data."""
    pos, scans = 2, 0  # after the start-of-image marker
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            return 'truncated or corrupt JPEG (broken marker structure)'
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xD9:
            return None if scans else 'corrupt JPEG: no image data'
        elif marker not in _SEGMENT_MARKERS or pos + 4 > len(data):
            return 'truncated or corrupt JPEG (broken marker structure)'
        else:
            end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], 'big')
            if marker != 0xDA:  # a header segment
                pos = end
                continue
            found = _MARKER_IN_SCAN.search(data, end)
            if found is None:
                return (
                    'truncated or corrupt JPEG: no end-of-image marker '
                    '(cut short, or padded with zeros)'
                )
            if found.start() == end:
                return 'corrupt JPEG: no image data'
            scans, pos = scans + 1, found.start()
    return 'truncated or corrupt JPEG: no end-of-image marker'


def _check_jpeg(image: Image.Image, path: str, data: bytes | None) -> None:
    if image.format == 'JPEG':
        if data is None:
            with open(path, 'rb') as f:
                data = f.read()
        problem = jpeg_problem(data)
        if problem:
            raise ImageError(path, problem)


def _wide_to_gray(image: Image.Image) -> Image.Image:
    """A 32-bit integer or float image as 8-bit gray, scaled from the range
    its values use ([0, 1] for floats, [0, 255], [0, 65535]; beyond that
    the 32-bit range, or a float image's maximum)."""
    values = np.asarray(image, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError('pixel values are NaN/Inf')
    if values.size and values.min() < 0:
        raise ValueError(f'negative pixel values ({values.min():g})')
    ranges = ((1.0,) if image.mode == 'F' else ()) + (255.0, 65535.0)
    high = values.max() if values.size else 0.0
    full = 2.0**31 - 1 if image.mode == 'I' else high  # signed 32-bit
    top = next((r for r in ranges if high <= r), full)
    gray = values * (255.0 / top)
    return Image.fromarray(gray.clip(0, 255).round().astype(np.uint8))


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy: 16-bit, 32-bit and float scaled down, transparency
    on white."""
    if image.mode in ('F', 'I'):
        image = _wide_to_gray(image)
    elif image.mode in _SIXTEEN_BIT:
        gray = np.asarray(image, dtype=np.float32) / 257
        image = Image.fromarray(gray.clip(0, 255).round().astype(np.uint8))
    if image.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or (
        'transparency' in image.info
    ):
        rgba = image.convert('RGBA')
        white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert('RGB')
    return image.convert('RGB')


def read_rgb_image(path: str, data: bytes | None = None) -> Image.Image:
    """``path`` (or its bytes ``data``) as an upright (EXIF-rotated) 8-bit
    RGB image; one-line errors."""
    try:
        with open_image(path, data) as image:
            _check_jpeg(image, path, data)
            return to_rgb(ImageOps.exif_transpose(image))
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageError(path, f'cannot read image ({err})') from None


# EXIF orientations that swap width and height (rotations by 90 degrees).
_TRANSPOSED = (5, 6, 7, 8)


def check_image(
    path: str, min_side: int = 1, data: bytes | None = None
) -> tuple[int, int]:
    """Decode ``path`` (or its bytes ``data``; cheaply: JPEGs at reduced
    scale) to catch truncated or corrupt files; its upright ``(width,
    height)`` (after the EXIF rotation), or :class:`ImageError`."""
    with open_image(path, data) as image:
        width, height = image.size
        if min(width, height) < min_side:
            raise ImageError(
                path, f'too small ({width}x{height} px; min_image_side is {min_side})'
            )
        _check_jpeg(image, path, data)
        try:  # a PNG's EXIF may sit after its pixels: reading it decodes
            if image.getexif().get(0x0112) in _TRANSPOSED:
                width, height = height, width
            if image.format == 'JPEG':  # DCT scaling still reads every byte
                image.draft('RGB', (max(min_side, 64), max(min_side, 64)))
            image.load()
            if image.mode in ('F', 'I'):
                _wide_to_gray(image)
        except (OSError, ValueError, SyntaxError) as err:
            raise ImageError(path, f'truncated or corrupt image ({err})') from None
    return width, height
