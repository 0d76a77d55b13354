"""Read the training image (and its own reference, if the record names one)
as RGB PIL images; for FaceID, the record's face embedding and face crop."""

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from PIL import Image

from ...errors import DatasetError, ImageError
from ...image_io import read_rgb_image
from ...registry import TRANSFORMS

__all__ = ['LoadImage', 'LoadFaceEmbedding']


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


@TRANSFORMS.register_module()
class LoadFaceEmbedding(BaseTransform):
    """Load a FaceID record's face embedding (``face_embedding``: a ``.npy``
    of float32 (512, ), as ``tools/prepare_faces.py`` writes it) as
    ``face_embeds``; its aligned face crop (``face_image``) becomes
    ``reference_img``, what the image encoder reads (FaceID-Plus/PlusV2).
    Run it after :class:`LoadImage`.

    Args:
        crop: ``None``: the crop when the record has one; ``True``: every
            record must have one; ``False``: never.
        dim: Width of the embedding.
    """

    def __init__(self, crop: bool | None = None, dim: int = 512) -> None:
        self.crop, self.dim = crop, dim

    def transform(self, results: dict) -> dict:
        where = results.get('img_path', 'a record')
        path = results.get('face_embedding_path')
        if path is None:
            raise DatasetError(
                f'{where}: the record has no "face_embedding"; FaceID needs '
                'one per record (tools/prepare_faces.py writes them)'
            )
        try:
            embedding = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DatasetError(
                f'{path}: not a readable .npy face embedding ({err})'
            ) from None
        if embedding.shape != (self.dim,) or not np.isfinite(embedding).all():
            raise DatasetError(
                f'{path}: a face embedding must be {self.dim} finite numbers, '
                f'got shape {embedding.shape}'
            )
        results['face_embeds'] = torch.from_numpy(embedding.astype(np.float32))
        has_crop = bool(results.get('face_image_path'))
        if self.crop or (self.crop is None and has_crop):
            if not has_crop:
                raise DatasetError(
                    f'{where}: the record has no "face_image" (the aligned '
                    'face crop FaceID-Plus encodes; tools/prepare_faces.py '
                    'writes it)'
                )
            results['reference_img'] = _read(results, 'face_image_path', '-')
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop={self.crop})'
