"""Read an image file as an RGB PIL image."""
from mmcv.transforms import BaseTransform

from ...errors import DatasetError, ImageError
from ...image_io import read_rgb_image
from ...registry import TRANSFORMS

__all__ = ['LoadImage']


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Load ``results['img_path']`` as 8-bit RGB, upright per its EXIF
    orientation (see :func:`diffengine_ipa.image_io.read_rgb_image`).

    Adds ``img`` (PIL image) and ``ori_shape`` ``(height, width)``.
    """

    def transform(self, results: dict) -> dict:
        try:
            image = read_rgb_image(results['img_path'])
        except ImageError as err:
            raise DatasetError(str(err)) from None
        results['img'] = image
        results['ori_shape'] = (image.height, image.width)
        return results
