"""What training needs of a model family: the frozen base model.

A family is the frozen text-to-image model of one kind (SD1.5, SDXL, SD3,
FLUX.1) together with everything that differs between kinds. This is the
role training reads: the classes of its components, its text conditioning,
its training objective, how the adapter's attention is installed and fed.
The other two roles are the generation glue (:attr:`DiffusionFamily.generation`,
a :class:`FamilyGeneration`) and the official file layout
(:attr:`DiffusionFamily.layout`, an ``AdapterLayout`` by name). ``IPAdapter``
asks its family and never branches on which one it is.

Class attributes and class methods work without loading any weights (the
inference API and the converter use them); an instance holds the loaded,
frozen components under their diffusers names (``unet`` or ``transformer``,
``vae``, ``text_encoder``, ``tokenizer``, ...).
"""

import contextlib
import importlib
import inspect
from typing import Any

import torch
from torch import nn

from ...errors import UserError
from ..model_sources import load_component, load_scheduler_config
from .family_generation import FamilyGeneration

__all__ = ['DiffusionFamily']


class DiffusionFamily(nn.Module):
    """The frozen base model of one family (see the module docstring).

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id of the base
            model, or ``random:<architecture>`` (random weights, for tests).
        objective: Overrides of the family's training objective settings.
    """

    # name in the pipeline → (library, class), loaded from that subfolder
    components: dict[str, tuple[str, str]] = {}
    denoiser_name = 'unet'
    layout = ''  # official file layout, see diffengine_ipa.official_format
    generation: type[FamilyGeneration] = FamilyGeneration  # the pipeline glue
    # The image projection of the family's published adapters.
    default_projection = dict(type='IPAdapterImageProjection', num_tokens=4)
    # Storage precision of an embedding cache when the user names none.
    cache_dtype = 'fp32'

    def __init__(
        self, pretrained_model_name_or_path: str, objective: dict | None = None
    ) -> None:
        super().__init__()
        source = pretrained_model_name_or_path
        for name, (library, cls) in self.components.items():
            setattr(
                self, name, load_component(component_class(library, cls), source, name)
            )
        config = load_scheduler_config(source)
        import diffusers

        self.scheduler = getattr(diffusers, config['_class_name']).from_config(
            config
        )  # the one its pipeline generates with
        self.objective = self.build_objective(config, **(objective or {}))

    # --- the parts ------------------------------------------------------------

    @property
    def denoiser(self) -> nn.Module:
        """The UNet or transformer."""
        return getattr(self, self.denoiser_name)

    def build_objective(self, scheduler_config: dict, **overrides) -> Any:
        raise NotImplementedError

    def pipeline_components(self) -> dict[str, Any]:
        """The components, named as the family's diffusers pipeline names them."""
        parts = {name: getattr(self, name) for name in self.components}
        return dict(parts, scheduler=self.scheduler)

    def conditioning_modules(self) -> dict[str, Any]:
        """What turns an image and a caption into conditions (VAE, text
        encoders, tokenizers): the identity of an embedding cache."""
        return {
            name: getattr(self, name)
            for name in self.components
            if name != self.denoiser_name
        }

    # --- latents --------------------------------------------------------------

    def latent_distribution(
        self, pixels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE's latent mean and std of ``pixels`` (B, 3, H, W) in
        [-1, 1]; in fp32 when the VAE asks for it (``force_upcast``), even
        under mixed precision."""
        fp32 = self.vae.config.get('force_upcast', False)
        guard = (
            torch.autocast(pixels.device.type, enabled=False)
            if fp32
            else contextlib.nullcontext()
        )
        with guard:
            distribution = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist
        return distribution.mean, distribution.std

    def scale_latents(self, sample: torch.Tensor) -> torch.Tensor:
        """A VAE sample in the denoiser's units: ``(x - shift) · scale``."""
        config = self.vae.config
        shift = config.get('shift_factor') or 0.0
        return (sample - shift) * config.scaling_factor

    def check_latent_size(self, latents: torch.Tensor) -> None:
        """One line, not a shape error, when the image size does not fit."""

    # --- text -----------------------------------------------------------------

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """The text encoders' outputs (what an embedding cache stores)."""
        raise NotImplementedError

    def text_pipeline(self) -> Any:
        """The family's diffusers pipeline holding the text parts only, made
        once: its ``encode_prompt`` is the conditioning the family trains with
        (so training and generation encode a prompt the same way)."""
        pipe = self.__dict__.get('_text_pipeline')
        if pipe is None:
            import diffusers

            cls = getattr(diffusers, self.generation.pipeline_class)
            names = inspect.signature(cls).parameters
            parts = {
                name: getattr(self, name)
                if name.startswith(('text_encoder', 'tokenizer'))
                else None
                for name in names
                if name in self.components or name == 'scheduler'
            }
            pipe = cls(**parts)
            pipe.set_progress_bar_config(disable=True)
            self.__dict__['_text_pipeline'] = pipe
        return pipe

    def conditions(
        self, encodings: dict[str, torch.Tensor], inputs: dict
    ) -> dict[str, torch.Tensor]:
        """The denoiser's text conditions from the encodings (and the
        sample's other inputs, e.g. SDXL's time ids)."""
        return encodings

    # --- the adapter ----------------------------------------------------------

    @classmethod
    def adapter_layers(cls, denoiser: nn.Module) -> list[str]:
        """Processor names (``denoiser.attn_processors``) that get image K/V."""
        raise NotImplementedError

    @classmethod
    def token_width(cls, denoiser: nn.Module) -> int:
        """Width of the image tokens the adapter's K/V read."""
        raise NotImplementedError

    def install_adapter(self, projection: nn.Module) -> None:
        """Give the adapter layers trainable image K/V (diffusers' processors)."""
        raise NotImplementedError

    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        conditions: dict[str, torch.Tensor],
        image_tokens: Any,
    ) -> torch.Tensor:
        """The denoiser's prediction, in the layout of ``noisy``."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """This family's settings, as its config entry would give them."""
        names = inspect.signature(type(self)).parameters
        return {
            name: getattr(self, name)
            for name in names
            if hasattr(self, name) and name != 'objective'
        }


def component_class(library: str, name: str) -> type:
    """A class of diffusers or transformers by name."""
    return getattr(importlib.import_module(library), name)


def require(inputs: dict, key: str, how: str) -> torch.Tensor:
    """``inputs[key]``, or one line saying how the data pipeline provides it."""
    if key not in inputs:
        raise UserError(f'the model needs {key!r} per sample: {how}')
    return inputs[key]
