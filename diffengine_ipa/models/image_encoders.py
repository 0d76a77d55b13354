"""Frozen image encoders that read the reference image, with their own
preprocessing.

An encoder is a config entry (type, path, subfolder): CLIP's
``CLIPVisionModelWithProjection`` (SD1.5, SDXL, FLUX.1), ``SiglipVisionModel``
(SD3.5) or ``Dinov2Model``. Its preprocessing (resize, crop, mean/std) comes
from the encoder's own ``preprocessor_config.json``, or, where a folder has
none (h94/IP-Adapter's), from the processor class's defaults at the model's
image size, as diffusers' ``load_ip_adapter`` does. ``preprocess=dict(...)``
overrides single settings. The data pipeline's ``PreprocessReference`` uses the
same processor, so training, caching and generation see the same pixels.

Two kinds of features, named by what an image projection reads:
``'pooled'`` (CLIP's projected ``image_embeds``; SigLIP's and DINOv2's pooler
output) and ``'hidden_states'`` (the penultimate layer's tokens, which
IP-Adapter Plus and SD3.5's time-aware Resampler read).
"""

import importlib
from typing import Any

import torch
from torch import nn

from ..errors import ModelSourceError, UserError
from ..registry import MODELS
from .model_sources import RANDOM_PREFIX, load_component

__all__ = [
    'ImageEncoder',
    'CLIPImageEncoder',
    'SiglipImageEncoder',
    'Dinov2ImageEncoder',
    'FEATURE_KINDS',
    'processor_image_size',
    'image_encoder_config',
]

FEATURE_KINDS = ('pooled', 'hidden_states')
FIELD = 'model.image_encoder.pretrained_model_name_or_path'
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def processor_image_size(processor: Any) -> int:
    """The side of the square images ``processor`` makes."""
    if getattr(processor, 'do_center_crop', False) and processor.crop_size:
        return processor.crop_size['height']
    size = processor.size
    return size['height'] if size.get('height') else size['shortest_edge']


class ImageEncoder(nn.Module):
    """A frozen vision model and its preprocessor.

    Args:
        pretrained_model_name_or_path: Hub id, local folder, or
            ``random:<architecture>`` (random weights, for tests).
        subfolder: The encoder's folder in that repo, e.g.
            ``sdxl_models/image_encoder`` of ``h94/IP-Adapter``.
        preprocess: Processor settings that override the encoder's own
            (``size``, ``crop_size``, ``image_mean``, ``image_std``, ...).
    """

    model_class = ''  # the transformers class
    processor_class = ''  # its image processor, for folders without one

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        subfolder: str | None = None,
        preprocess: dict | None = None,
    ) -> None:
        super().__init__()
        self.source = dict(
            pretrained_model_name_or_path=pretrained_model_name_or_path,
            subfolder=subfolder,
        )
        self.model = load_component(
            _transformers_class(self.model_class),
            pretrained_model_name_or_path,
            subfolder,
            field=FIELD,
            component='image_encoder',
        )
        self.processor = self.load_processor(
            pretrained_model_name_or_path, subfolder, preprocess
        )

    # --- preprocessing ------------------------------------------------------

    @classmethod
    def load_processor(
        cls,
        pretrained_model_name_or_path: str,
        subfolder: str | None = None,
        preprocess: dict | None = None,
    ) -> Any:
        """The encoder's own processor (its ``preprocessor_config.json``), else
        the processor class's defaults at the model's image size."""
        source, overrides = pretrained_model_name_or_path, dict(preprocess or {})
        if source.startswith(RANDOM_PREFIX):
            from .random_models.architectures import architecture_spec

            spec = architecture_spec(source[len(RANDOM_PREFIX) :])
            settings = dict(spec.get('processor', {}), **overrides)
            return _transformers_class(cls.processor_class)(**settings)
        from transformers import AutoConfig, AutoImageProcessor

        kwargs = dict(subfolder=subfolder) if subfolder else {}
        try:
            return AutoImageProcessor.from_pretrained(source, **kwargs, **overrides)
        except (OSError, ValueError):  # no preprocessor_config.json
            pass
        try:
            config = AutoConfig.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as err:
            raise ModelSourceError(
                f'{FIELD}: cannot read the image encoder config of {source!r}'
                f'{f" (subfolder {subfolder!r})" if subfolder else ""}: '
                f'{str(err).splitlines()[0]}'
            ) from None
        vision = getattr(config, 'vision_config', config)
        settings = dict(cls.default_processor_settings(vision.image_size), **overrides)
        return _transformers_class(cls.processor_class)(**settings)

    @classmethod
    def default_processor_settings(cls, image_size: int) -> dict:
        """Processor settings for a folder without a preprocessor config."""
        return dict(size=image_size, crop_size=image_size)

    def preprocess(self, images: list) -> torch.Tensor:
        """PIL images → pixel values (B, 3, S, S) on the encoder's device."""
        pixels = self.processor(images=images, return_tensors='pt').pixel_values
        return pixels.to(self.device)

    @property
    def image_size(self) -> int:
        return processor_image_size(self.processor)

    # --- features -------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def feature_dim(self, features: str) -> int:
        """Width of ``'pooled'`` or ``'hidden_states'`` features."""
        _check_kind(features)
        config = self.model.config
        return self.pooled_dim(config) if features == 'pooled' else config.hidden_size

    @staticmethod
    def pooled_dim(config: Any) -> int:
        return config.hidden_size

    def forward(self, pixels: torch.Tensor, features: str = 'pooled') -> torch.Tensor:
        """Features of preprocessed images: ``'pooled'`` (B, D) or
        ``'hidden_states'`` of the penultimate layer (B, tokens, D)."""
        _check_kind(features)
        if pixels.shape[-1] != self.image_size:
            raise UserError(
                f'the image encoder takes {self.image_size} px images but the '
                f"data gives {pixels.shape[-1]} px: the data pipeline's "
                'PreprocessReference was set up for another image encoder'
            )
        pixels = pixels.to(device=self.device, dtype=self.dtype)
        if features == 'hidden_states':
            return self.model(pixels, output_hidden_states=True).hidden_states[-2]
        return self.pooled(self.model(pixels))

    @staticmethod
    def pooled(output: Any) -> torch.Tensor:
        return output.pooler_output

    @torch.no_grad()
    def null_features(self, rule: str, features: str) -> torch.Tensor:
        """The features of "no image" (1, ...), by a pipeline's convention:
        ``'zero_features'``, ``'zero_pixels'`` (the encoder's features of an
        all-zero pixel tensor) or ``'black_image'`` (of a black image, after
        preprocessing)."""
        size = self.image_size
        if rule == 'black_image':
            from PIL import Image

            pixels = self.preprocess([Image.new('RGB', (size, size))])
        else:
            pixels = torch.zeros(1, 3, size, size, device=self.device)
        encoded = self(pixels, features)
        if rule == 'zero_features':
            return torch.zeros_like(encoded)
        if rule not in ('zero_pixels', 'black_image'):
            raise ValueError(f'unknown null-image rule {rule!r}')
        return encoded


@MODELS.register_module()
class CLIPImageEncoder(ImageEncoder):
    """``CLIPVisionModelWithProjection``; pooled = the projected ``image_embeds``."""

    model_class = 'CLIPVisionModelWithProjection'
    processor_class = 'CLIPImageProcessor'

    @staticmethod
    def pooled_dim(config: Any) -> int:
        return config.projection_dim

    @staticmethod
    def pooled(output: Any) -> torch.Tensor:
        return output.image_embeds


@MODELS.register_module()
class SiglipImageEncoder(ImageEncoder):
    """``SiglipVisionModel`` (SD3.5's google/siglip-so400m-patch14-384);
    pooled = the attention-pooling head's output."""

    model_class = 'SiglipVisionModel'
    processor_class = 'SiglipImageProcessor'

    @classmethod
    def default_processor_settings(cls, image_size: int) -> dict:
        return dict(size=dict(height=image_size, width=image_size))


@MODELS.register_module()
class Dinov2ImageEncoder(ImageEncoder):
    """``Dinov2Model``; pooled = the normalised CLS token."""

    model_class = 'Dinov2Model'
    processor_class = 'BitImageProcessor'

    @classmethod
    def default_processor_settings(cls, image_size: int) -> dict:
        return dict(
            size=dict(shortest_edge=image_size * 256 // 224),
            crop_size=dict(height=image_size, width=image_size),
            image_mean=IMAGENET_MEAN,
            image_std=IMAGENET_STD,
        )


# transformers' model_type → the encoder that reads it.
ENCODER_TYPES = dict(
    clip='CLIPImageEncoder',
    clip_vision_model='CLIPImageEncoder',
    siglip='SiglipImageEncoder',
    siglip_vision_model='SiglipImageEncoder',
    dinov2='Dinov2ImageEncoder',
)


def image_encoder_config(image_encoder: dict | str) -> dict:
    """An image encoder's config entry; a bare path (or an entry without a
    type) gets the type its ``config.json`` names (for ``random:<name>``,
    the architecture's)."""
    entry = (
        dict(image_encoder)
        if isinstance(image_encoder, dict)
        else dict(pretrained_model_name_or_path=image_encoder)
    )
    if 'type' in entry:
        return entry
    source = entry['pretrained_model_name_or_path']
    if source.startswith(RANDOM_PREFIX):
        from .random_models.architectures import architecture_spec

        spec = architecture_spec(source[len(RANDOM_PREFIX) :])
        return dict(entry, type=spec.get('encoder', 'CLIPImageEncoder'))
    from transformers import AutoConfig

    subfolder = entry.get('subfolder')
    try:
        config = AutoConfig.from_pretrained(
            source, **(dict(subfolder=subfolder) if subfolder else {})
        )
        kind = ENCODER_TYPES.get(config.model_type, 'CLIPImageEncoder')
    except (OSError, ValueError):  # loading it says what is wrong, in one line
        kind = 'CLIPImageEncoder'
    return dict(entry, type=kind)


def _transformers_class(name: str) -> type:
    return getattr(importlib.import_module('transformers'), name)


def _check_kind(features: str) -> None:
    if features not in FEATURE_KINDS:
        raise ValueError(f'features must be one of {FEATURE_KINDS}, got {features!r}')
