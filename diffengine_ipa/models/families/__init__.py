"""Model families: one module per family (SD1.5, SDXL, SD3.5, FLUX.1,
Chroma, FLUX.1 Kontext, Qwen-Image) holds everything about it, by role:
what training needs (a
:class:`DiffusionFamily`), what generation needs (a
:class:`FamilyGeneration`), the official file layout it is saved in (an
``AdapterLayout``, registered in ``LAYOUTS``), its random architectures
(tiny and full size) and its registry entry. :data:`FAMILIES` is the one
list of families, found by importing every module of this package that
defines a ``FAMILY`` entry (so a new family is its module, with no line
here); docs/adding_a_family.md says how to add one."""

import importlib
import pkgutil

from .chroma import Chroma
from .diffusion_family import DiffusionFamily
from .family_entry import DEFAULT_FAMILY, Family, family_type
from .family_generation import FamilyGeneration
from .flux import Flux
from .flux_kontext import FluxKontext
from .qwen_image import QwenImage
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
    'QwenImage',
    'cross_attention_layers',
    'family_class',
    'family_type',
]


def _discover_families() -> dict[str, Family]:
    """{name: entry} of every module here with a ``FAMILY``, ordered by
    the entries' ``position`` (then name): the order lists show them."""
    entries = []
    for module in pkgutil.iter_modules(__path__):
        imported = importlib.import_module(f'.{module.name}', __name__)
        entry = getattr(imported, 'FAMILY', None)
        if isinstance(entry, Family):
            entries.append(entry)
    entries.sort(key=lambda entry: (entry.position, entry.name))
    return {entry.name: entry for entry in entries}


# The family registry: {name: entry}, in the order lists show them.
FAMILIES: dict[str, Family] = _discover_families()


def family_class(model_cfg: dict) -> type[DiffusionFamily]:
    """The family class a model config uses (``model.family.type``, SD1.5's
    when it names none): the one lookup of a config's family."""
    from ...registry import MODELS

    name = family_type(model_cfg)
    return MODELS.get(name) if isinstance(name, str) else name
