"""Read user images the same way everywhere (training data, references)."""
from PIL import Image, ImageOps

from .errors import UserError

__all__ = ['read_rgb_image']


def read_rgb_image(path: str) -> Image.Image:
    """``path`` as an upright (EXIF-rotated) RGB image; one-line errors."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return image.convert('RGB')
    except FileNotFoundError:
        raise UserError(f'{path}: no such image file') from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f'{path}: cannot read image ({err})') from None
