"""The Generate tab: IPAdapterInferencer loaded once per (config, adapter,
options); the page's image is tools/infer.py's for the same inputs."""

import os.path as osp

import numpy as np
import pytest
from PIL import Image

from diffengine_ipa.errors import UserError
from diffengine_ipa.webui.generation import (
    InferencerCache,
    generate,
    generation_defaults,
)

from ..conftest import REPO
from ..tools.helpers import run_tool
from .conftest import CONFIG, IMAGES, put


@pytest.fixture(scope='module')
def adapters(tiny_workspace, converted) -> dict:
    """The tiny SD1.5 run's converted file and checkpoint, in the workspace;
    a reference image too."""
    ws = tiny_workspace
    put(ws, osp.join(IMAGES, 'cat.jpg'), 'refs/cat.jpg')
    put(ws, osp.join(IMAGES, 'rocket.jpg'), 'refs/rocket.jpg')
    return dict(
        file=put(ws, converted['safetensors'], 'adapters/sd15.safetensors'),
        checkpoint=put(ws, converted['checkpoint'], 'adapters/iter_10.pth'),
    )


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert('RGB'), np.int16)


def test_models_load_once_for_many_calls(tiny_workspace, adapters):
    ws, cache = tiny_workspace, InferencerCache(size=2)
    first = generate(
        ws,
        cache,
        CONFIG,
        'adapters/sd15.safetensors',
        ['refs/cat.jpg'],
        'a cat',
        steps=2,
        seed=1,
    )
    again = generate(
        ws, cache, CONFIG, adapters['file'], ['refs/cat.jpg'], 'a cat', steps=2, seed=1
    )
    two = generate(
        ws,
        cache,
        CONFIG,
        adapters['file'],
        ['refs/cat.jpg', 'refs/rocket.jpg'],
        'a cat',
        scale=0.5,
        steps=2,
        seed=2,
        num_images=2,
    )
    assert cache.loads == 1
    assert all(
        p.startswith(osp.join(ws.root, 'outputs', 'generate'))
        for p in first + again + two
    )
    assert len(set(first + again + two)) == 4 and len(two) == 2
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert not np.array_equal(pixels(two[0]), pixels(two[1]))
    generate(
        ws, cache, CONFIG, 'adapters/iter_10.pth', ['refs/cat.jpg'], steps=2
    )  # another adapter: another inferencer
    assert cache.loads == 2


def test_presets_and_missing_inputs_are_one_line(tiny_workspace, adapters):
    ws = tiny_workspace
    with pytest.raises(UserError, match="scale preset 'style': SD15 has none"):
        generate(
            ws,
            InferencerCache(),
            CONFIG,
            'adapters/sd15.safetensors',
            ['refs/cat.jpg'],
            preset='style',
            steps=2,
        )
    with pytest.raises(UserError, match='reference image'):
        generate(ws, InferencerCache(), CONFIG, 'adapters/sd15.safetensors', [])
    with pytest.raises(UserError, match='choose an adapter'):
        generate(ws, InferencerCache(), CONFIG, '', ['refs/cat.jpg'])


@pytest.mark.slow
def test_the_pages_image_is_infer_pys(tiny_workspace, adapters, tmp_path):
    ws = tiny_workspace
    defaults = generation_defaults(CONFIG)
    (ours,) = generate(
        ws,
        InferencerCache(),
        CONFIG,
        'adapters/sd15.safetensors',
        ['refs/cat.jpg'],
        'a cat on a sofa',
        'blurry',
        0.8,
        steps=2,
        guidance_scale=defaults['guidance_scale'],
        seed=7,
    )
    tiny = osp.join(ws.root, 'models', 'tiny_models')
    out = tmp_path / 'infer.png'
    run_tool(
        'infer.py',
        osp.join(REPO, 'configs', 'ip_adapter', CONFIG),
        adapters['file'],
        '--image',
        osp.join(ws.root, 'refs/cat.jpg'),
        '--prompt',
        'a cat on a sofa',
        '--negative-prompt',
        'blurry',
        '--scale',
        '0.8',
        '--steps',
        '2',
        '--seed',
        '7',
        '--out',
        out,
        '--cfg-options',
        f'model.pretrained_model_name_or_path={tiny}/tiny_sd15',
        f'model.image_encoder.pretrained_model_name_or_path={tiny}/'
        'tiny_sd15/image_encoder',
    )
    assert np.array_equal(pixels(ours), pixels(out))
