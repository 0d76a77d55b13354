"""Model families: one home for everything that differs between SD1.5, SDXL,
SD3 and FLUX.1 (see :class:`DiffusionFamily`)."""

from .diffusion_family import DiffusionFamily
from .flux import Flux
from .sd3 import SD3
from .sd15 import SD15
from .sdxl import SDXL
from .unet_attention import cross_attention_layers

__all__ = ['DiffusionFamily', 'SD15', 'SDXL', 'SD3', 'Flux', 'cross_attention_layers']
