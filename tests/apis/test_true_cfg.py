"""FLUX's true CFG: diffusers' documented IP-Adapter call (an empty negative
prompt, ``true_cfg_scale=4.0``, ``ip_adapter_image``) gives the pixels of
the inferencer, of tools/infer.py and of the model's predict path with the
same settings (≤ 1/255); elsewhere true CFG is one clear error, and a FLUX
negative prompt without it is said to be ignored."""

import logging

import numpy as np
import pytest
from PIL import Image

from diffengine_ipa.errors import UserError

from ..conftest import TINY_CONFIGS, build_tiny_model, tiny_overrides
from ..tools.diffusers_side import diffusers_pipeline
from ..tools.helpers import one_line_error, run_tool_in_process
from ..tools.published_files import official_file
from .test_inferencer import CAT, PROMPT, inferencer, rgb, same, theirs

TRUE_CFG = dict(negative_prompt='', true_cfg_scale=4.0)


@pytest.fixture(scope='module')
def flux_adapter(tiny_families, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('true_cfg') / 'flux.safetensors'
    official_file(tiny_families, 'flux', path)
    return str(path)


@pytest.fixture(scope='module')
def documented(tiny_families, flux_adapter) -> np.ndarray:
    """diffusers' FluxPipeline with the adapter loaded, called as its docs
    call it."""
    pipe = diffusers_pipeline('flux', tiny_families['flux'], flux_adapter)
    return theirs(pipe, 'flux', ip_adapter_image=rgb(CAT), **TRUE_CFG)


def test_inferencer_gives_the_documented_call(tiny_families, flux_adapter, documented):
    generate = inferencer(tiny_families, 'flux', flux_adapter)
    ours = generate(PROMPT, CAT, steps=4, seed=3, **TRUE_CFG)[0]
    assert same(ours, documented)
    plain = generate(PROMPT, CAT, steps=4, seed=3)[0]
    assert not same(plain, documented)  # true CFG changed the image


def test_infer_tool_gives_the_documented_call(
    tiny_families, flux_adapter, documented, tmp_path
):
    out = tmp_path / 'out.png'
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_families['flux']).items()]
    result = run_tool_in_process(
        'infer.py',
        TINY_CONFIGS['flux'],
        flux_adapter,
        '--image',
        CAT,
        '--prompt',
        PROMPT,
        '--negative-prompt',
        '',
        '--true-cfg-scale',
        '4',
        '--steps',
        '4',
        '--seed',
        '3',
        '--device',
        'cpu',
        '--out',
        str(out),
        '--cfg-options',
        *options,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert same(Image.open(out), documented)


def test_predict_path_gives_the_documented_call(
    tiny_families, flux_adapter, documented
):
    """``generation_cfg=dict(true_cfg_scale=4.0, negative_prompt='')``: what
    validation and tools/test.py generate (the shapes-world judge)."""
    model = build_tiny_model(tiny_families, 'flux')
    model.load_pretrained_ip_adapter(flux_adapter)
    model.generation_cfg.update(TRUE_CFG)
    (out,) = model.predict(dict(img=[rgb(CAT)], prompt=[PROMPT], scale=[1.0], seed=[3]))
    assert same(out['image'], documented)


def test_true_cfg_elsewhere_is_one_clear_error(tiny_families, tmp_path):
    adapter = tmp_path / 'sd15.safetensors'
    official_file(tiny_families, 'sd15', adapter)
    with pytest.raises(UserError, match='true_cfg_scale: SD15 has no true CFG'):
        inferencer(tiny_families, 'sd15', str(adapter))(
            PROMPT, CAT, steps=2, true_cfg_scale=4.0
        )
    result = run_tool_in_process(
        'infer.py',
        TINY_CONFIGS['sd15'],
        str(adapter),
        '--image',
        CAT,
        '--true-cfg-scale',
        '4',
    )
    assert 'error: --true-cfg-scale: SD15 has no true CFG' in one_line_error(result)
    with pytest.raises(UserError, match='model.generation_cfg.true_cfg_scale'):
        from diffengine_ipa.models import IPAdapter

        IPAdapter(
            tiny_families['sd15']['base'],
            tiny_families['sd15']['image_encoder'],
            generation_cfg=dict(true_cfg_scale=4.0),
        )


def test_a_flux_negative_prompt_without_true_cfg_is_said_ignored(
    tiny_families, flux_adapter, caplog
):
    generate = inferencer(tiny_families, 'flux', flux_adapter)
    with caplog.at_level(logging.WARNING):
        generate(PROMPT, CAT, steps=1, negative_prompt='blurry')
    (line,) = [
        r.getMessage()
        for r in caplog.records
        if 'negative prompt is ignored' in r.getMessage()
    ]
    assert '--true-cfg-scale 4.0' in line and '\n' not in line
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        generate(PROMPT, CAT, steps=1, true_cfg_scale=4.0)
    assert any("negative_prompt=''" in r.getMessage() for r in caplog.records)
