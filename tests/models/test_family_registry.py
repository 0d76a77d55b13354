"""The family registry is the one list of families: each entry's roles,
files and architectures exist, no role class mixes another's members, and
the lists elsewhere (the README table, the tiny-model tool, the web UI) are
the registry's."""

import inspect
import os.path as osp
import re

import pytest

from diffengine_ipa.models.families import (
    FAMILIES,
    DiffusionFamily,
    FamilyGeneration,
    family_class,
)
from diffengine_ipa.official_format import LAYOUTS
from diffengine_ipa.official_format.layouts import AdapterLayout
from diffengine_ipa.registry import ARCHITECTURES, MODELS

from ..conftest import REPO


def _members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith('__')}


@pytest.mark.parametrize('name', list(FAMILIES))
def test_an_entry_names_what_exists(name):
    entry = FAMILIES[name]
    assert MODELS.get(entry.base.__name__) is entry.base
    assert issubclass(entry.base, DiffusionFamily)
    assert issubclass(entry.generation, FamilyGeneration)
    assert entry.generation.family_name == entry.base.__name__
    assert isinstance(LAYOUTS[entry.layout], AdapterLayout)
    for architecture in (entry.architecture, entry.tiny_architecture):
        assert ARCHITECTURES.get(architecture)()['family'] == entry.base.__name__
    for config in (entry.config, entry.tiny_config):
        assert osp.isfile(osp.join(REPO, 'configs/ip_adapter', config)), config


def test_the_roles_do_not_mix():
    """Training, generation and file layout: no member of one role's base
    class is defined again on another's."""
    training = _members(DiffusionFamily)
    generation = _members(FamilyGeneration)
    layout = _members(AdapterLayout)
    assert not training & generation, training & generation
    assert not training & layout, training & layout
    assert not generation & layout - {'families'}, generation & layout
    for entry in FAMILIES.values():
        classes = inspect.getmro(entry.base)
        defined = set().union(*(_members(c) for c in classes if c is not object))
        assert not defined & (generation - {'family_name'}), entry.name


def test_the_one_lookup_defaults_to_the_first_family():
    first = next(iter(FAMILIES.values())).base
    assert family_class({}) is first
    assert family_class(dict(family=dict(type='SDXL'))) is FAMILIES['sdxl'].base
    assert family_class(dict(family=dict(type=FAMILIES['flux'].base))) is (
        FAMILIES['flux'].base
    )


def test_the_readme_family_table_is_the_registry():
    """Every registered family has its row (label, configs, file layout), and
    the table has no family row the registry lacks."""
    readme = open(osp.join(REPO, 'README.md'), encoding='utf-8').read()
    table = readme.split('## Model families', 1)[1].split('\n\n', 2)[1]
    rows = [line for line in table.splitlines() if line.startswith('| **')]
    assert len(rows) == len(FAMILIES), rows
    for entry, row in zip(FAMILIES.values(), rows, strict=True):
        label = re.match(r'\| \*\*([^*]+)\*\*', row)[1]
        assert label.startswith(entry.label), (label, entry.label)
        assert f'`{entry.config}` · `{entry.tiny_config}`' in row, row
        assert f'`{entry.layout}`' in row, row


def test_the_registry_is_every_family_module_in_position_order():
    """A family is found by its module alone: every module of the package
    with a ``FAMILY`` entry is in the registry, in ``position`` order."""
    import glob
    import importlib

    folder = osp.join(REPO, 'diffengine_ipa/models/families')
    paths = glob.glob(f'{folder}/[!_]*.py')
    modules = [osp.basename(path)[:-3] for path in paths]
    entries = [
        getattr(
            importlib.import_module(f'diffengine_ipa.models.families.{m}'),
            'FAMILY',
            None,
        )
        for m in modules
    ]
    found = {entry.name for entry in entries if entry is not None}
    assert set(FAMILIES) == found
    assert list(FAMILIES)[:5] == ['sd15', 'sdxl', 'sd3', 'flux', 'chroma']
    positions = [entry.position for entry in FAMILIES.values()]
    assert positions == sorted(positions)
