"""Model families: one module per family (SD1.5, SDXL, SD3.5, FLUX.1,
Chroma, FLUX.1 Kontext) holds everything about it, by role: what training needs (a
:class:`DiffusionFamily`), what generation needs (a
:class:`FamilyGeneration`), the official file layout it is saved in (an
``AdapterLayout``, registered in ``LAYOUTS``), its random architectures
(tiny and full size) and its registry entry. :data:`FAMILIES` is the one
list of families; docs/adding_a_family.md says how to add one."""

from . import chroma, flux, flux_kontext, sd3, sd15, sdxl
from .chroma import Chroma
from .diffusion_family import DiffusionFamily
from .family_entry import DEFAULT_FAMILY, Family, family_type
from .family_generation import FamilyGeneration
from .flux import Flux
from .flux_kontext import FluxKontext
from .sd3 import SD3
from .sd15 import SD15
from .sdxl import SDXL
from .unet_attention import cross_attention_layers

__all__ = [
    'DEFAULT_FAMILY',
    'FAMILIES',
    'DiffusionFamily',
    'Family',
    'FamilyGeneration',
    'SD15',
    'SDXL',
    'SD3',
    'Flux',
    'Chroma',
    'FluxKontext',
    'cross_attention_layers',
    'family_class',
    'family_type',
]

# The family registry: {name: entry}, in the order lists show them.
FAMILIES: dict[str, Family] = {
    module.FAMILY.name: module.FAMILY
    for module in (sd15, sdxl, sd3, flux, chroma, flux_kontext)
}


def family_class(model_cfg: dict) -> type[DiffusionFamily]:
    """The family class a model config uses (``model.family.type``, SD1.5's
    when it names none): the one lookup of a config's family."""
    from ...registry import MODELS

    name = family_type(model_cfg)
    return MODELS.get(name) if isinstance(name, str) else name
