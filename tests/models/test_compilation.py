"""Regional compilation: each repeated block compiled, not the denoiser."""

import pytest

from diffengine_ipa.errors import UserError
from diffengine_ipa.models.compilation import compile_denoiser, repeated_blocks
from diffengine_ipa.models.random_models import build_component


def compiled(module) -> bool:
    return module._compiled_call_impl is not None


@pytest.mark.parametrize(
    'architecture, denoiser, blocks',
    [
        ('tiny_sd15', 'unet', 'BasicTransformerBlock'),
        ('tiny_sd3', 'transformer', 'JointTransformerBlock'),
        ('tiny_flux', 'transformer', 'FluxTransformerBlock'),
    ],
)
def test_regional_compiles_the_repeated_blocks_only(architecture, denoiser, blocks):
    model = build_component(architecture, denoiser)
    found = repeated_blocks(model)
    assert found and any(type(b).__name__ == blocks for b in found)
    assert compile_denoiser(model, 'regional') == len(found)
    assert all(compiled(block) for block in found)
    assert not compiled(model)
    others = [m for m in model.modules() if m is not model and m not in found]
    assert not any(compiled(m) for m in others)


def test_whole_and_off():
    model = build_component('tiny_sd15', 'unet')
    assert compile_denoiser(model, False) == 0 and not compiled(model)
    assert compile_denoiser(model, True) == 1 and compiled(model)


def test_an_unknown_mode_is_one_line():
    with pytest.raises(UserError, match="compile_denoiser='fast': use False"):
        compile_denoiser(build_component('tiny_sd15', 'unet'), 'fast')
