"""Read the training image (and its own reference, if the record names one)
as RGB PIL images."""

from mmcv.transforms import BaseTransform
from PIL import Image

from ...errors import DatasetError, ImageError
from ...image_io import read_rgb_image
from ...registry import TRANSFORMS

__all__ = ['LoadImage']


def _read(results: dict, path_key: str, bytes_key: str):
    try:
        return read_rgb_image(results[path_key], results.get(bytes_key))
    except ImageError as err:
        raise DatasetError(str(err)) from None


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Load ``results['img_path']`` as 8-bit RGB, upright per its EXIF
    orientation (see :func:`diffengine_ipa.image_io.read_rgb_image`); from
    ``img_bytes`` when the image is stored inside the dataset (a shard
    member, a dataset cell).

    Adds ``img`` (PIL image) and ``ori_shape`` ``(height, width)``; and, for
    a record with its own reference (``reference_path``, or
    ``reference_bytes``), ``reference_img``: what the image encoder reads
    instead of the target; and, for a record with an input image
    (``input_path``, or ``input_bytes``: FLUX.1 Kontext), ``input_img``,
    resized to the target's size so that every later resize, crop and flip
    treats the pair alike (edit pairs are aligned).
    """

    def transform(self, results: dict) -> dict:
        image = _read(results, 'img_path', 'img_bytes')
        results['img'] = image
        results['ori_shape'] = (image.height, image.width)
        if results.get('reference_path'):
            results['reference_img'] = _read(
                results, 'reference_path', 'reference_bytes'
            )
        if results.get('input_path'):
            given = _read(results, 'input_path', 'input_bytes')
            if given.size != image.size:
                given = given.resize(image.size, Image.Resampling.BICUBIC)
            results['input_img'] = given
        return results
