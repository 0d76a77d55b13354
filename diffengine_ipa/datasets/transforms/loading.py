"""Read an image file as an RGB PIL image."""
from mmcv.transforms import BaseTransform

from ...errors import DatasetError, UserError
from ...image_io import read_rgb_image
from ...registry import TRANSFORMS

__all__ = ['LoadImage']


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Load ``results['img_path']`` as RGB, upright per its EXIF orientation.

    Adds ``img`` (PIL image) and ``ori_shape`` ``(height, width)``.
    """

    def transform(self, results: dict) -> dict:
        try:
            image = read_rgb_image(results['img_path'])
        except UserError as err:
            raise DatasetError(str(err)) from None
        results['img'] = image
        results['ori_shape'] = (image.height, image.width)
        return results
