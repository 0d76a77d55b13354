"""Resize, crop and flip the training image; crops are recorded.

``crop_top_left`` (top, left) in the resized image is what SDXL's time ids
need, so every crop records it and the flip updates it. The random ones draw
from the sample's own generator (``results['generator']``, keyed by seed,
epoch and sample index, see :mod:`diffengine_ipa.sample_generators`), so the
same sample is cropped and flipped alike whatever DataLoader worker, rank or
resume it comes through. A resize or crop without ``size`` takes the
dataset's ``resolution`` (:func:`fill_resolution`), so a config changes the
training resolution in one place. An input image (``input_img``, FLUX.1
Kontext; ``LoadImage`` sizes it as the target) gets the same resize, crop
and flip as the target.
"""

import torch
from mmcv.transforms import BaseTransform
from PIL import Image

from ...errors import DatasetError
from ...registry import TRANSFORMS

__all__ = [
    'ResizeShortEdge',
    'CenterCrop',
    'RandomCrop',
    'RandomHorizontalFlip',
    'ResizeCropToBucket',
    'fill_resolution',
]

SIZED = ('ResizeShortEdge', 'CenterCrop', 'RandomCrop')


def fill_resolution(pipeline: list, resolution: int | None) -> list:
    """The pipeline with ``size=resolution`` given to each resize or crop
    that has no size of its own."""
    if resolution is None:
        return list(pipeline)
    filled = []
    for transform in pipeline:
        kind = transform.get('type') if isinstance(transform, dict) else None
        name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
        if name in SIZED and transform.get('size') is None:
            transform = dict(transform, size=resolution)
        filled.append(transform)
    return filled


def _both(results: dict, change) -> None:
    """Apply ``change`` (PIL image → PIL image) to the target and to the
    input image, if the sample has one."""
    for key in ('img', 'input_img'):
        if key in results:
            results[key] = change(results[key])


def _require_size(size: int | None, name: str) -> int:
    if size is None:
        raise DatasetError(
            f'{name} has no size: give it size=, or the dataset resolution='
        )
    return size


@TRANSFORMS.register_module()
class ResizeShortEdge(BaseTransform):
    """Resize so that the shorter side is ``size``, keeping the aspect ratio.

    Adds ``resized_shape`` (height, width).
    """

    def __init__(
        self, size: int | None = None, interpolation: str = 'bilinear'
    ) -> None:
        self.size = _require_size(size, type(self).__name__)
        self.interpolation = Image.Resampling[interpolation.upper()]

    def transform(self, results: dict) -> dict:
        image = results['img']
        scale = self.size / min(image.width, image.height)
        width = max(self.size, round(image.width * scale))
        height = max(self.size, round(image.height * scale))
        _both(results, lambda im: im.resize((width, height), self.interpolation))
        results['resized_shape'] = (height, width)
        return results


class _Crop(BaseTransform):
    """Crop ``size`` × ``size`` at a position chosen by the subclass."""

    def __init__(self, size: int | None = None) -> None:
        self.size = _require_size(size, type(self).__name__)

    def position(
        self, height: int, width: int, generator: torch.Generator | None
    ) -> tuple[int, int]:
        raise NotImplementedError

    def transform(self, results: dict) -> dict:
        image = results['img']
        if min(image.width, image.height) < self.size:
            raise DatasetError(
                f'{results.get("img_path")}: image of '
                f'{image.width}×{image.height} is smaller than '
                f'the {self.size} px crop; resize it first'
            )
        top, left = self.position(image.height, image.width, results.get('generator'))
        box = (left, top, left + self.size, top + self.size)
        _both(results, lambda im: im.crop(box))
        results['crop_top_left'] = (top, left)
        return results


@TRANSFORMS.register_module()
class CenterCrop(_Crop):
    """Crop the centre square of side ``size`` (the reference recipe)."""

    def position(
        self, height: int, width: int, generator: torch.Generator | None
    ) -> tuple[int, int]:
        return (height - self.size) // 2, (width - self.size) // 2


@TRANSFORMS.register_module()
class RandomCrop(_Crop):
    """Crop a square of side ``size`` at a random position."""

    def position(
        self, height: int, width: int, generator: torch.Generator | None
    ) -> tuple[int, int]:
        top, left = (
            int(torch.randint(0, side - self.size + 1, (), generator=generator))
            for side in (height, width)
        )
        return top, left


@TRANSFORMS.register_module()
class ResizeCropToBucket(BaseTransform):
    """Resize to cover the sample's aspect-ratio bucket, then crop to it.

    ``results['bucket']`` (height, width) is set by the dataset when it has
    ``buckets`` (see :class:`~diffengine_ipa.datasets.AspectRatioBuckets`).
    Adds ``resized_shape`` and ``crop_top_left``, which ``ComputeTimeIds``
    turns into SDXL's time ids: they follow the real crop.

    Args:
        random_crop: Crop at a random position (the sample's generator)
            instead of the centre.
    """

    def __init__(
        self, random_crop: bool = False, interpolation: str = 'bilinear'
    ) -> None:
        self.random_crop = random_crop
        self.interpolation = Image.Resampling[interpolation.upper()]

    def transform(self, results: dict) -> dict:
        if 'bucket' not in results:
            raise DatasetError(
                f'{results.get("img_path")}: no bucket; set '
                'resolution= and buckets=dict(...) on the dataset '
                'to use ResizeCropToBucket'
            )
        height, width = results['bucket']
        image = results['img']
        scale = max(height / image.height, width / image.width)
        new_width = max(width, round(image.width * scale))
        new_height = max(height, round(image.height * scale))
        size = (new_width, new_height)
        _both(results, lambda im: im.resize(size, self.interpolation))
        if self.random_crop:
            top, left = (
                int(torch.randint(0, extra + 1, (), generator=results.get('generator')))
                for extra in (new_height - height, new_width - width)
            )
        else:
            top, left = (new_height - height) // 2, (new_width - width) // 2
        _both(results, lambda im: im.crop((left, top, left + width, top + height)))
        results['resized_shape'] = (new_height, new_width)
        results['crop_top_left'] = (top, left)
        return results


@TRANSFORMS.register_module()
class RandomHorizontalFlip(BaseTransform):
    """Mirror the training image with probability ``prob``.

    Only the VAE image is flipped; run it after ``PreprocessReference`` so the
    reference the adapter sees stays as it is. A recorded crop is mirrored
    too, as SDXL's time ids expect.
    """

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if float(torch.rand((), generator=results.get('generator'))) >= self.prob:
            return results
        image = results['img']
        _both(results, lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        if 'crop_top_left' in results:
            top, left = results['crop_top_left']
            full_width = results.get('resized_shape', results['ori_shape'])[1]
            results['crop_top_left'] = (top, full_width - left - image.width)
        return results
