"""Generate images with diffusers' pipelines, from files or from a live model.

``generate`` is the one place that calls a pipeline; ``live_pipeline`` wraps a
model that is being trained (its UNet, already holding the adapter's K/V
processors, and its image projection) in the family's diffusers pipeline
without copying or re-loading anything.
"""
import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import torch
from PIL import Image

__all__ = ['generate', 'live_pipeline', 'make_pipeline']


def make_pipeline(pipeline_class: type, components: dict[str, Any]) -> Any:
    """Build ``pipeline_class`` from components, filling in what this kit
    never uses (safety checker, watermark) with None."""
    accepted = inspect.signature(pipeline_class).parameters
    extras = dict(safety_checker=None, requires_safety_checker=False,
                  add_watermarker=False)
    components = dict(components)
    components.update({k: v for k, v in extras.items() if k in accepted})
    pipe = pipeline_class(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextlib.contextmanager
def live_pipeline(model: Any) -> Iterator[Any]:
    """The model's family pipeline, generating with the adapter as it is now.

    diffusers feeds ``ip_adapter_image`` to the UNet through
    ``unet.encoder_hid_proj``; the model's projection is attached there for
    the duration of the block and detached after it (as diffusers'
    ``unload_ip_adapter`` does), so checkpoints never see it twice.
    """
    import diffusers
    from diffusers.models.embeddings import MultiIPAdapterImageProjection
    from transformers import CLIPImageProcessor

    unet = model.unet
    size = model.image_encoder.config.image_size
    pipeline_class = getattr(diffusers, model.prompt_encoder.pipeline_class)
    pipe = make_pipeline(pipeline_class, dict(
        vae=model.vae,
        unet=unet,
        scheduler=model.inference_scheduler,
        image_encoder=model.image_encoder,
        feature_extractor=CLIPImageProcessor(size=size, crop_size=size),
        **model.prompt_encoder.pipeline_components()))
    processors = unet.attn_processors.values()
    scales = [(p, list(p.scale)) for p in processors if hasattr(p, 'scale')]
    unet.encoder_hid_proj = MultiIPAdapterImageProjection(
        [model.image_projection])
    unet.config.encoder_hid_dim_type = 'ip_image_proj'
    try:
        yield pipe
    finally:
        unet.encoder_hid_proj = None
        unet.config.encoder_hid_dim_type = None
        for processor, scale in scales:  # generation may have changed them
            processor.scale = scale


def generate(pipe: Any,
             image: Image.Image,
             prompt: str = '',
             negative_prompt: str | None = None,
             scale: float = 1.0,
             steps: int = 50,
             guidance_scale: float = 7.5,
             seed: int = 0,
             num_images: int = 1,
             height: int | None = None,
             width: int | None = None) -> list[Image.Image]:
    """Images for ``prompt`` guided by the reference ``image``.

    Seeded the standard diffusers way:
    ``generator=torch.Generator(device).manual_seed(seed)``.
    """
    pipe.set_ip_adapter_scale(scale)
    generator = torch.Generator(pipe.device).manual_seed(seed)
    return pipe(
        prompt=prompt,
        negative_prompt=negative_prompt,
        ip_adapter_image=image,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        num_images_per_prompt=num_images,
        height=height,
        width=width,
        generator=generator).images
