"""The converted file in diffusers, for every family: loaded with nothing
missing or extra, the same weights, the same denoiser output, and
tools/infer.py gives the image diffusers gives for the same seed."""

import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from diffengine_ipa.models.random_models import write_image_encoder
from diffengine_ipa.official_format import official_key_map

from ..conftest import (
    REPO,
    TINY_CONFIG,
    TINY_CONFIGS,
    build_tiny_model,
    family_of,
    tiny_overrides,
)
from .diffusers_side import (
    denoiser_outputs,
    diffusers_pipeline,
    diffusers_pixels,
    projection_in,
)
from .helpers import one_line_error, run_tool_here

pytestmark = pytest.mark.slow  # trains each variant; runs tools as processes

CAT = osp.join(REPO, 'data/mini_dataset/images/cat.jpg')
COFFEE = osp.join(REPO, 'data/mini_dataset/images/coffee.jpg')
PROMPT = 'best quality, high quality'
# tools/infer.py's half of each pixel comparison: the cat, seed 3 (as
# diffusers_pixels), adapter scale 0.7.
INFER_CAT = ('--image', CAT, '--seed', '3', '--scale', '0.7')
# sd15, sdxl, their Plus, sd3, flux, chroma, qwen_image, flux_kontext
VARIANTS = tuple(TINY_CONFIGS)


def trained_model(variant, tiny_families, checkpoint_file):
    model = build_tiny_model(tiny_families, variant)
    state = torch.load(checkpoint_file, weights_only=True)['state_dict']
    model.load_state_dict(state, strict=True)
    return model.eval()


def file_keys(path: str) -> set:
    if path.endswith('.safetensors'):
        with safe_open(path, framework='pt') as f:
            return set(f.keys())
    nested = torch.load(path, weights_only=True)
    assert list(nested) == ['image_proj', 'ip_adapter']  # FLUX's loader's order
    return {f'{part}.{key}' for part in nested for key in nested[part]}


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('fmt', ['safetensors', 'bin'])
def test_load_ip_adapter_gives_our_weights(tiny_families, convert_tiny, variant, fmt):
    files, folders = convert_tiny(variant), tiny_families[family_of(variant)]
    family = family_of(variant)
    model = trained_model(variant, tiny_families, files['checkpoint'])
    keys = file_keys(files[fmt])
    canonical = set(official_key_map(model).values())
    if (
        family in ('flux', 'chroma', 'qwen_image', 'flux_kontext')
        and fmt == 'safetensors'
    ):
        assert {k.split('.')[0] for k in keys} == {
            'ip_adapter_proj_model',
            'double_blocks',
        }
        assert len(keys) == len(canonical)
    else:
        assert keys == canonical  # nothing missing, nothing extra
    pipe = diffusers_pipeline(variant, folders, files[fmt])
    denoiser = model.family.denoiser
    theirs = pipe.unet if family in ('sd15', 'sdxl') else pipe.transformer
    names = model.family.adapter_layers(denoiser)
    assert names and names == [
        name
        for name, p in theirs.attn_processors.items()
        if isinstance(p, torch.nn.Module)
    ]
    ours_processors, their_processors = denoiser.attn_processors, theirs.attn_processors
    for name in names:
        ours = ours_processors[name].state_dict()
        assert set(ours) == set(their_processors[name].state_dict())
        for key, value in their_processors[name].state_dict().items():
            assert torch.equal(ours[key], value), (name, key)
    # diffusers built the same class from the file, with the same weights.
    projection, ours = projection_in(pipe, family), model.image_projection
    assert type(projection) is type(ours).__mro__[1]
    assert set(projection.state_dict()) == set(ours.state_dict())
    assert all(
        torch.equal(projection.state_dict()[k], v) for k, v in ours.state_dict().items()
    )


@pytest.mark.parametrize('variant', VARIANTS)
def test_denoiser_output_equals_diffusers(tiny_families, convert_tiny, variant):
    files, folders = convert_tiny(variant), tiny_families[family_of(variant)]
    pipe = diffusers_pipeline(variant, folders, files['safetensors'])
    model = trained_model(variant, tiny_families, files['checkpoint'])
    side = model.image_encoder.image_size
    features = model.image_encoder(
        torch.randn(2, 3, side, side), model.image_projection.image_features
    )
    ours, theirs = denoiser_outputs(model, pipe, family_of(variant), features)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max() <= 1e-5
    if family_of(variant) == 'flux_kontext':  # the input image counts (~8e-4)
        black = torch.zeros(2, 3, 64, 64)
        other, _ = denoiser_outputs(model, pipe, 'flux_kontext', features, black)
        assert (ours - other).abs().max() > 1e-4


@pytest.mark.parametrize('variant', VARIANTS)
def test_infer_matches_diffusers_for_the_same_seed(
    tiny_families, convert_tiny, variant, tmp_path
):
    files, folders = convert_tiny(variant), tiny_families[family_of(variant)]
    options = [f'{k}={v}' for k, v in tiny_overrides(folders).items()]
    common = [*INFER_CAT, '--cfg-options', *options]
    config = TINY_CONFIGS[variant]
    edit = {}
    if family_of(variant) == 'flux_kontext':  # the image to edit, at 64 px
        source = tmp_path / 'input.png'
        Image.open(COFFEE).convert('RGB').resize((64, 64)).save(source)
        common = ['--input-image', str(source), *common]
        edit = dict(image=Image.open(source).convert('RGB'))
    run_tool_here(
        'infer.py',
        config,
        files['safetensors'],
        *common,
        '--out',
        tmp_path / 'from_file.png',
    )
    ours = np.asarray(Image.open(tmp_path / 'from_file.png'), dtype=np.int16)

    pipe = diffusers_pipeline(variant, folders, files['safetensors'])
    pipe.set_ip_adapter_scale(0.7)
    reference = Image.open(CAT).convert('RGB')
    theirs = diffusers_pixels(
        pipe, family_of(variant), PROMPT, ip_adapter_image=reference, **edit
    )
    assert ours.shape == theirs.shape == (64, 64, 3)
    assert np.abs(ours - theirs).max() <= 1  # ≤ 1/255


def test_a_checkpoint_infers_like_its_converted_file(tiny_family, converted, tmp_path):
    """A training checkpoint gives the image of its converted file (the batch
    of two runs other matmul shapes, hence a 1/255 tolerance)."""
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    common = ['--image', CAT, '--seed', '3', '--cfg-options', *options]
    run_tool_here(
        'infer.py',
        TINY_CONFIG,
        converted['safetensors'],
        *common,
        '--out',
        tmp_path / 'from_file.png',
    )
    run_tool_here(
        'infer.py',
        TINY_CONFIG,
        converted['checkpoint'],
        *common,
        '--num-images',
        '2',
        '--out',
        tmp_path / 'from_ckpt.png',
    )
    ours = np.asarray(Image.open(tmp_path / 'from_file.png'), dtype=np.int16)
    first = np.asarray(Image.open(tmp_path / 'from_ckpt_0.png'), dtype=np.int16)
    assert np.abs(first - ours).max() <= 1
    assert (tmp_path / 'from_ckpt_1.png').exists()


def test_infer_errors_are_one_line(tiny_family, converted, tmp_path):
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'\xff\xd8\xff not really a jpeg')

    def infer_error(image, *more: str) -> str:
        """The one error line of tools/infer.py on ``image``."""
        return one_line_error(
            run_tool_here(
                'infer.py',
                TINY_CONFIG,
                converted['safetensors'],
                '--image',
                image,
                '--cfg-options',
                *options,
                *more,
                check=False,
            )
        )

    error = infer_error(broken)
    assert str(broken) in error and 'not an image' in error

    wide = tmp_path / 'wide_encoder'  # an image encoder with 24-d embeddings
    write_image_encoder('tiny_clip_vision', str(wide))
    config = json.loads((wide / 'config.json').read_text())
    config['projection_dim'] = 24
    (wide / 'config.json').write_text(json.dumps(config))
    from transformers import CLIPVisionModelWithProjection

    CLIPVisionModelWithProjection.from_pretrained(
        wide, ignore_mismatched_sizes=True
    ).save_pretrained(wide)
    encoder = f'model.image_encoder.pretrained_model_name_or_path={wide}'
    error = infer_error(CAT, encoder)
    assert 'expects 16-d image embeddings' in error and 'gives 24' in error


def test_sd15_adapter_with_sdxl_config_is_one_line(tiny_families, converted):
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_families['sdxl']).items()]
    error = one_line_error(
        run_tool_here(
            'infer.py',
            TINY_CONFIGS['sdxl'],
            converted['safetensors'],
            '--image',
            CAT,
            '--cfg-options',
            *options,
            check=False,
        )
    )
    assert 'trained for a 32-d cross-attention' in error
    assert 'configured base model has 64' in error


@pytest.mark.parametrize(
    'adapter, config, layouts',
    [
        (
            'sd3',
            'flux',
            (
                'in the instantx-sd3 layout (unknown, 32-d tokens)',
                'takes the xlabs-flux layout (unknown, 48-d tokens)',
            ),
        ),
        ('flux', 'sd15', ('in the xlabs-flux layout', 'takes the ip-adapter layout')),
        ('sd15', 'sd3', ('in the ip-adapter layout', 'takes the instantx-sd3 layout')),
    ],
)
def test_another_familys_adapter_is_one_line(
    tiny_families, convert_tiny, adapter, config, layouts
):
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_families[config]).items()]
    error = one_line_error(
        run_tool_here(
            'infer.py',
            TINY_CONFIGS[config],
            convert_tiny(adapter)['safetensors'],
            '--image',
            CAT,
            '--cfg-options',
            *options,
            check=False,
        )
    )
    assert all(part in error for part in layouts)
    assert 'the config names another model family' in error
