"""The page's family-dependent choices, derived from the family registry
(:data:`~diffengine_ipa.models.families.FAMILIES`) and the shipped configs,
so that a new family, or a variant config of one, shows up in Train,
Generate and Evaluate with no change here; so do the face embedders
(:data:`~diffengine_ipa.registry.FACE_EMBEDDERS`) of the FaceID configs.

A config's family is the registry entry of the class its
``model.family.type`` names; a class the registry does not list (a variant
subclassing a family, e.g. a FaceID one) counts as the nearest registered
family it derives from.
"""

import functools

from . import kit

__all__ = [
    'family_of',
    'config_family',
    'config_faceid',
    'config_choices',
    'face_embedders',
    'default_config',
    'scale_presets',
    'all_scale_presets',
    'preset_label',
]


def family_of(cls: type):
    """The registry entry of family class ``cls``, or of the nearest
    registered family it derives from; None when there is none."""
    from ..models.families import FAMILIES

    by_class = {entry.base: entry for entry in FAMILIES.values()}
    for base in getattr(cls, '__mro__', ()):
        if base in by_class:
            return by_class[base]
    return None


@functools.lru_cache(maxsize=256)
def config_family(config: str):
    """The :class:`~diffengine_ipa.models.families.Family` of config
    ``config`` (its ``model.family.type``), or None."""
    from ..models.families import family_class

    return family_of(family_class(kit.read_config(config).model))


@functools.lru_cache(maxsize=256)
def config_faceid(config: str) -> str | None:
    """The FaceID variant config ``config`` trains (``'FaceID'``,
    ``'FaceID-Plus'``, ``'FaceID-PlusV2'``), or None."""
    from ..models.image_projections import faceid_variant

    projection = kit.read_config(config).model.get('image_projection')
    return faceid_variant(projection) if projection else None


def _family_order(config: str, families: list) -> tuple:
    """Registry order; in a family its tiny config, its real one, then the
    others by name; configs of no registered family last."""
    family = config_family(config)
    if family is None:
        return (len(families), 2, config)
    rank = {family.tiny_config: 0, family.config: 1}.get(config, 2)
    return (families.index(family.name), rank, config)


def config_choices() -> list[tuple[str, str]]:
    """``(label, config name)`` of every shipped config, grouped by family
    (label ``'SD1.5 · tiny_sd15_mini_dataset.py'``; a FaceID config's names
    its variant, ``'SD1.5 · FaceID-PlusV2 · sd15_faceid_plusv2.py'``)."""
    from ..models.families import FAMILIES

    families = list(FAMILIES)
    names = sorted(kit.config_names(), key=lambda n: _family_order(n, families))
    choices = []
    for name in names:
        family = config_family(name)
        parts = (family and family.label, config_faceid(name), name)
        choices.append((' · '.join(p for p in parts if p), name))
    return choices


def default_config() -> str | None:
    """The config the page opens with: the first registered family's tiny
    config (it runs anywhere, in seconds), else the first config."""
    from ..models.families import FAMILIES

    names = kit.config_names()
    for family in FAMILIES.values():
        if family.tiny_config in names:
            return family.tiny_config
    return names[0] if names else None


def scale_presets(config: str | None) -> list[str]:
    """``'scale'`` (the slider's number) and the named per-block scales of
    the config's family (InstantStyle's ``style``, ``layout``, ... where it
    has them)."""
    family = config_family(config) if config else None
    presets = family.generation.scale_presets if family else {}
    return ['scale', *presets]


def all_scale_presets() -> list[str]:
    """``'scale'`` and every registered family's presets, in registry order."""
    from ..models.families import FAMILIES

    names = dict.fromkeys(
        name for entry in FAMILIES.values() for name in entry.generation.scale_presets
    )
    return ['scale', *names]


def preset_label() -> str:
    """The preset choice's label, naming the families that have presets."""
    from ..models.families import FAMILIES

    having = [e.label for e in FAMILIES.values() if e.generation.scale_presets]
    return 'Preset' + (f' (style / layout: {", ".join(having)})' if having else '')


def face_embedders() -> list[str]:
    """The registered face embedders, the default (insightface) first."""
    from ..faces import DEFAULT_EMBEDDER
    from ..registry import FACE_EMBEDDERS

    FACE_EMBEDDERS.import_from_location()
    return sorted(FACE_EMBEDDERS.module_dict, key=lambda n: (n != DEFAULT_EMBEDDER, n))
