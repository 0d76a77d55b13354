"""Turn the processed sample into model inputs."""

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

__all__ = ['ToVAEInput', 'ComputeTimeIds', 'PackInputs']


@TRANSFORMS.register_module()
class ToVAEInput(BaseTransform):
    """The RGB image as a (3, H, W) float tensor in [-1, 1]: ``pixel_values``;
    the input image (``input_img``, FLUX.1 Kontext) likewise:
    ``input_pixel_values``."""

    def transform(self, results: dict) -> dict:
        pairs = (('img', 'pixel_values'), ('input_img', 'input_pixel_values'))
        for image, key in pairs:
            if image in results:
                array = np.asarray(results[image], dtype=np.float32)  # (H, W, 3)
                pixels = torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0
                results[key] = pixels.contiguous()
        return results


@TRANSFORMS.register_module()
class ComputeTimeIds(BaseTransform):
    """SDXL's size conditioning of the training image, ``time_ids`` (6, ):
    original (height, width), crop top-left (top, left), target (height, width).

    Run it after the crop and flip, which record ``crop_top_left``; the
    original size is the file's, as ``LoadImage`` records it.
    """

    def transform(self, results: dict) -> dict:
        image = results['img']
        top, left = results.get('crop_top_left', (0, 0))
        results['time_ids'] = torch.tensor(
            [*results['ori_shape'], top, left, image.height, image.width],
            dtype=torch.float32,
        )
        return results


@TRANSFORMS.register_module()
class PackInputs(BaseTransform):
    """Select what the model reads (``inputs``) and what it may log
    (``data_samples``).

    Args:
        input_keys: Keys passed to the model.
        meta_keys: Keys kept as sample metadata when present;
            ``sample_idx`` keys the sample's random draws (see
            :mod:`diffengine_ipa.models.training_draws`).
    """

    def __init__(
        self,
        input_keys: tuple = ('pixel_values', 'reference_pixel_values', 'text'),
        meta_keys: tuple = ('img_path', 'sample_idx', 'ori_shape', 'crop_top_left'),
    ) -> None:
        self.input_keys = tuple(input_keys)
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        inputs = {key: results[key] for key in self.input_keys}
        samples = {key: results[key] for key in self.meta_keys if key in results}
        return dict(inputs=inputs, data_samples=samples)
