"""Preprocess the reference image for the image encoder, as the encoder's
own processor does."""

from mmcv.transforms import BaseTransform

from ...errors import UserError
from ...registry import MODELS, TRANSFORMS

__all__ = ['PreprocessReference']


@TRANSFORMS.register_module()
class PreprocessReference(BaseTransform):
    """The image encoder's own preprocessing of the reference image.

    The processor is the encoder's (its ``preprocessor_config.json``, or its
    class's defaults at the model's image size; see
    :mod:`diffengine_ipa.models.image_encoders`), the same one that encodes
    references at generation, so training and generation see the same image
    features. It reads the record's own reference (``reference_img``) when
    there is one, else the target image (``img``). Adds
    ``reference_pixel_values`` (3, S, S). Run it before any crop or flip of
    the target: the reference stays as it is.

    Args:
        image_encoder: The model's ``image_encoder`` config entry. Configs
            leave it out: loading a config fills it in from
            ``model.image_encoder`` (see
            :func:`diffengine_ipa.user_config.link_image_preprocessing`).
    """

    def __init__(self, image_encoder: dict | None = None) -> None:
        if image_encoder is None:
            raise UserError(
                'PreprocessReference has no image encoder: load the config '
                'with diffengine_ipa.user_config.load_user_config (the tools '
                'do), which links it to model.image_encoder'
            )
        self.image_encoder = dict(image_encoder)
        settings = {k: v for k, v in self.image_encoder.items() if k != 'type'}
        self.processor = MODELS.get(self.image_encoder['type']).load_processor(
            **settings
        )

    def transform(self, results: dict) -> dict:
        reference = results.get('reference_img', results['img'])
        pixels = self.processor(images=reference, return_tensors='pt').pixel_values
        results['reference_pixel_values'] = pixels[0]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(image_encoder={self.image_encoder})'
