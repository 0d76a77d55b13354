"""The shapes world written once per session, small, into a temporary folder."""

import pytest

from diffengine_ipa.shapes_world.writer import write_world


@pytest.fixture(scope='session')
def small_world(tmp_path_factory) -> str:
    """A world with 200 pretraining images, 300 pairs and the 54 held-out
    references (seed 0)."""
    out = str(tmp_path_factory.mktemp('shapes_world'))
    write_world(out, seed=0, pretrain=200, pairs=300)
    return out


@pytest.fixture(scope='session')
def shapes_bases(tmp_path_factory) -> str:
    """The shipped bases laid out as diffusers folders (``<out>/sd15`` ...)."""
    from diffengine_ipa.shapes_world.bases import install_bases

    out = str(tmp_path_factory.mktemp('shapes_bases'))
    install_bases(out)
    return out
