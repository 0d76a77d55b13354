"""FLUX.1 Kontext [dev]: FLUX.1 that edits an input image from a prompt.

Its roles: training (:class:`FluxKontext`), generation
(:class:`FluxKontextGeneration`); its file layout is XLabs' FLUX.1 one
(``xlabs-flux``): diffusers' ``FluxKontextPipeline`` is a
``FluxIPAdapterMixin`` on the same ``FluxTransformer2DModel``, so
``load_ip_adapter`` installs the same processors. The adapter reads the
reference; the input image conditions the transformer as the pipeline feeds
it (its packed latents after the noisy ones in the sequence). Then its random
architectures and registry entry.
"""

from typing import Any

import torch

from ...errors import UserError
from ...registry import ARCHITECTURES, MODELS
from .diffusion_family import require
from .family_entry import Family
from .flux import Flux, FluxGeneration, flux1_dev, pack_latents, tiny_flux

__all__ = ['FluxKontext', 'FluxKontextGeneration', 'FAMILY']


class FluxKontextGeneration(FluxGeneration):
    """``FluxKontextPipeline``: FLUX.1's arguments, and the input image
    resized to the generated size (as training pairs it with its target)."""

    family_name = 'FluxKontext'
    pipeline_class = 'FluxKontextPipeline'
    controlnet_pipeline_class = ''  # diffusers 0.42 has no Kontext ControlNet
    controlnet_model_class = ''
    edits_input_image = True

    @classmethod
    def input_image_kwargs(
        cls, pipe: Any, image: Any, height: int | None, width: int | None
    ) -> dict[str, Any]:
        """``image`` (the input image, resized to ``height`` × ``width``),
        ``max_area`` = that size and ``_auto_resize=False``: the pipeline
        generates at the size asked and encodes the input image at it, rather
        than at its preferred ~1 MP sizes."""
        height = height or pipe.default_sample_size * pipe.vae_scale_factor
        width = width or pipe.default_sample_size * pipe.vae_scale_factor
        if image is not None:  # diffusers' own resize (its image processor's)
            image = pipe.image_processor.resize(image.convert('RGB'), height, width)
        return dict(image=image, max_area=height * width, _auto_resize=False)


@MODELS.register_module()
class FluxKontext(Flux):
    """FLUX.1 Kontext [dev] (``black-forest-labs/FLUX.1-Kontext-dev``), in
    XLabs' FLUX.1 layout.

    As :class:`Flux` (text, objective, adapter on the double-stream blocks),
    and each sample's input image (``input_pixel_values``, from the record's
    ``input_file``) conditions the transformer as ``FluxKontextPipeline``
    does: its VAE latents (the distribution's mode, scaled), packed 2×2,
    follow the noisy latents in the image sequence with position ids whose
    first channel is 1; only the noisy latents' part of the output is the
    prediction.
    """

    generation = FluxKontextGeneration

    def conditions(
        self, encodings: dict[str, torch.Tensor], inputs: dict
    ) -> dict[str, torch.Tensor]:
        """The text encodings and ``input_latents`` (B, C, h, w)."""
        pixels = require(
            inputs,
            'input_pixel_values',
            "FLUX.1 Kontext edits an input image: give each record an 'input_file' "
            "and add 'input_pixel_values' to PackInputs' input_keys (docs/data.md)",
        )
        mean, _ = self.latent_distribution(pixels)
        latents = self.scale_latents(mean)
        if latents.shape[-1] % 2 or latents.shape[-2] % 2:
            raise UserError(
                f'input images of {tuple(pixels.shape[-2:])} px do not pack into '
                '2×2 patches: use a size that is a multiple of 16'
            )
        return dict(encodings, input_latents=latents)

    def context_tokens(
        self,
        conditions: dict[str, torch.Tensor],
        packed: torch.Tensor,
        image_ids: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The noisy latents, then the input image's packed latents; their
        ids, the input's with first channel 1 (FluxKontextPipeline)."""
        tokens, ids = pack_latents(conditions['input_latents'].to(packed.dtype))
        ids[..., 0] = 1
        return torch.cat([packed, tokens], dim=1), torch.cat([image_ids, ids], dim=0)


# --- random architectures ----------------------------------------------------


@ARCHITECTURES.register_module(name='flux1_kontext_dev')
def flux1_kontext_dev() -> dict:
    """FLUX.1 Kontext [dev]: FLUX.1 [dev]'s architecture (11.9B
    transformer, CLIP-L and T5-XXL, 16-channel VAE)."""
    return dict(flux1_dev(), family='FluxKontext')


@ARCHITECTURES.register_module(name='tiny_flux_kontext')
def tiny_flux_kontext() -> dict:
    """The tiny FLUX.1 architecture, as Kontext's."""
    return dict(tiny_flux(), family='FluxKontext')


FAMILY = Family(
    'flux_kontext',
    'FLUX.1 Kontext',
    FluxKontext,
    architecture='flux1_kontext_dev',
    position=6,
)
