"""Generate images with diffusers' pipelines, from files or from a live model.

:class:`AdapterPipeline` is the one place that calls a pipeline: the image
encoder of the config turns the reference into features, and the family's
pipeline gets them (and the unconditional image prompt its own
``encode_image`` would make) as precomputed ``ip_adapter_image_embeds`` — so
any image encoder generates, and for the encoders diffusers knows the images
equal diffusers' own. :func:`live_pipeline` wraps a model that is being
trained in its family's pipeline without copying or re-loading anything.
"""
import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import torch
from PIL import Image

__all__ = ['AdapterPipeline', 'live_pipeline', 'make_pipeline',
           'pipeline_extras']


def pipeline_extras(pipeline_class: type) -> dict[str, Any]:
    """What this kit never uses (safety checker, watermark), as the
    pipeline's arguments that turn it off."""
    accepted = inspect.signature(pipeline_class).parameters
    extras = dict(safety_checker=None, requires_safety_checker=False,
                  add_watermarker=False)
    return {k: v for k, v in extras.items() if k in accepted}


def make_pipeline(pipeline_class: type, components: dict[str, Any]) -> Any:
    """Build ``pipeline_class`` from components it accepts."""
    accepted = inspect.signature(pipeline_class).parameters
    parts = {k: v for k, v in components.items() if k in accepted}
    pipe = pipeline_class(**parts, **pipeline_extras(pipeline_class))
    pipe.set_progress_bar_config(disable=True)
    return pipe


class AdapterPipeline:
    """A family's diffusers pipeline with an IP-Adapter loaded, fed by the
    configured image encoder.

    Args:
        pipe: The diffusers pipeline (adapter loaded or attached).
        family: The family (class or instance).
        image_encoder: The :class:`ImageEncoder`.
        features: What the projection reads: ``'pooled'`` or
            ``'hidden_states'``.
        settings: The family's config entry (e.g. ``max_sequence_length``).
    """

    def __init__(self, pipe: Any, family: Any, image_encoder: Any,
                 features: str, settings: dict | None = None) -> None:
        self.pipe = pipe
        self.family = family
        self.image_encoder = image_encoder
        self.features = features
        self.settings = dict(settings or {})

    @torch.no_grad()
    def image_embeds(self, reference: Image.Image
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (1, ...) of the reference and of "no image"."""
        encoder = self.image_encoder
        image = encoder(encoder.preprocess([reference]), self.features)
        rule = self.family.null_image[self.features]
        return image, encoder.null_features(rule, self.features).to(image.dtype)

    def __call__(self,
                 reference: Image.Image,
                 prompt: str = '',
                 negative_prompt: str | None = None,
                 scale: float = 1.0,
                 steps: int = 50,
                 guidance_scale: float = 7.5,
                 seed: int = 0,
                 num_images: int = 1,
                 height: int | None = None,
                 width: int | None = None) -> list[Image.Image]:
        """Images for ``prompt`` guided by the reference image.

        Seeded the standard diffusers way:
        ``generator=torch.Generator(device).manual_seed(seed)``.
        """
        self.pipe.set_ip_adapter_scale(scale)
        image, null = self.image_embeds(reference)
        generator = torch.Generator(self.pipe.device).manual_seed(seed)
        return self.pipe(
            prompt=prompt,
            negative_prompt=negative_prompt,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            num_images_per_prompt=num_images,
            height=height,
            width=width,
            generator=generator,
            **self.family.image_prompt_kwargs(image, null, guidance_scale),
            **self.family.pipeline_call_kwargs(self.settings)).images


@contextlib.contextmanager
def live_pipeline(model: Any) -> Iterator[AdapterPipeline]:
    """The model's family pipeline, generating with the adapter as it is now.

    The family attaches the model's projection where its pipeline looks for
    it for the duration of the block and detaches it after (as diffusers'
    ``unload_ip_adapter`` does), so checkpoints never see it twice.
    """
    import diffusers

    family, encoder = model.family, model.image_encoder
    pipeline_class = getattr(diffusers, family.pipeline_class)
    pipe = make_pipeline(pipeline_class, dict(
        family.pipeline_components(), image_encoder=encoder.model,
        feature_extractor=encoder.processor))
    with family.attached_projection(model.image_projection):
        yield AdapterPipeline(pipe, family, encoder,
                              model.image_projection.image_features,
                              family.settings())
