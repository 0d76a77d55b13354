"""A family's entry in the family registry: the one list of families.

Every list the kit keeps of its families is derived from
:data:`diffengine_ipa.models.families.FAMILIES`: the tiny-model tool, the
test fixtures and parametrisations, the web UI's choices, ``convert --info``
and the README's family table (checked against it by a test).
"""

from dataclasses import dataclass

__all__ = ['Family', 'DEFAULT_FAMILY', 'family_type']

# The family of a config whose model names none (``model.family``).
DEFAULT_FAMILY = 'SD15'


@dataclass(frozen=True)
class Family:
    """One model family, by its three roles and its files.

    Args:
        name: Short id (``'sd15'``): test ids, tiny model folders.
        label: How people name it (``'SD1.5'``): README, web UI, ``--info``.
        base: The training role, a :class:`DiffusionFamily` registered in
            ``MODELS`` (a config's ``model.family.type``); its ``generation``
            is the generation role and its ``layout`` the file layout's name.
        architecture: Its full-size random architecture (parameter counts,
            memory estimates, benchmarks).
        position: Where lists (README, web UI) show it; ties by name.
        config: Its leaf config on real weights (``configs/ip_adapter/``;
            default ``<name>_mini_dataset.py``).
        tiny_architecture: Its tiny random architecture (tests, the demo;
            default ``tiny_<name>``).
        tiny_config: Its leaf config on the tiny architecture (default
            ``tiny_<config>``).
    """

    name: str
    label: str
    base: type
    architecture: str
    position: int = 100
    config: str = ''
    tiny_architecture: str = ''
    tiny_config: str = ''

    def __post_init__(self) -> None:
        """Fill the names a family leaves to the convention."""
        config = self.config or f'{self.name}_mini_dataset.py'
        derived = dict(
            config=config,
            tiny_architecture=self.tiny_architecture or f'tiny_{self.name}',
            tiny_config=self.tiny_config or f'tiny_{config}',
        )
        for field_name, value in derived.items():
            object.__setattr__(self, field_name, value)

    @property
    def generation(self) -> type:
        """The generation role (:class:`FamilyGeneration`)."""
        return self.base.generation

    @property
    def layout(self) -> str:
        """The official file layout's name (``LAYOUTS``)."""
        return self.base.layout


def family_type(model_cfg: dict) -> str:
    """The registered family name a model config uses (``model.family.type``,
    SD1.5's when it names none)."""
    return dict(model_cfg.get('family') or {}).get('type', DEFAULT_FAMILY)
