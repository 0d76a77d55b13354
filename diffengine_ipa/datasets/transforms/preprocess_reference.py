"""Preprocess the reference image for the CLIP image encoder."""
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

__all__ = ['CLIPImageProcess']


@TRANSFORMS.register_module()
class CLIPImageProcess(BaseTransform):
    """transformers' ``CLIPImageProcessor`` on the loaded image.

    The same processor diffusers' pipelines use at inference (resize the
    short side, centre-crop, CLIP mean/std), so training and generation see
    the same image features. Adds ``clip_pixel_values`` (3, size, size).

    Args:
        size: The image encoder's input size (224 for CLIP ViT-L/14, ViT-H/14).
    """

    def __init__(self, size: int = 224) -> None:
        from transformers import CLIPImageProcessor
        self.size = size
        self.processor = CLIPImageProcessor(size=size, crop_size=size)

    def transform(self, results: dict) -> dict:
        pixels = self.processor(
            images=results['img'], return_tensors='pt').pixel_values
        results['clip_pixel_values'] = pixels[0]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size})'
