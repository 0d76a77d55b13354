"""The converted file in diffusers, for SD1.5 and SDXL: same weights, same UNet
output, and tools/infer.py gives the image diffusers gives for the same seed."""
import json
import os.path as osp

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPVisionModelWithProjection

from diffengine_ipa.models.model_families import build_family_component
from diffengine_ipa.models.unet_surgery import cross_attention_layers

from ..conftest import (
    REPO,
    TINY_CONFIG,
    TINY_CONFIGS,
    build_tiny_model,
    family_of,
    tiny_overrides,
)
from .helpers import one_line_error, run_tool

CAT = osp.join(REPO, 'data/mini_dataset/images/cat.jpg')
PROMPT = 'best quality, high quality'
NEGATIVE = 'monochrome, lowres, bad anatomy, worst quality, low quality'
PIPELINES = dict(sd15='StableDiffusionPipeline',
                 sdxl='StableDiffusionXLPipeline')
VARIANTS = tuple(TINY_CONFIGS)  # sd15, sdxl, sd15_plus, sdxl_plus


def diffusers_pipeline(variant, folders, adapter_file, with_encoder=True):
    """A plain diffusers pipeline, the adapter loaded from its file."""
    family = family_of(variant)
    pipeline_class = getattr(diffusers, PIPELINES[family])
    kwargs = {}
    if family == 'sd15':
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if with_encoder:
        kwargs['image_encoder'] = CLIPVisionModelWithProjection.from_pretrained(
            folders['image_encoder'])
    pipe = pipeline_class.from_pretrained(folders['base'], **kwargs)
    pipe.load_ip_adapter(
        osp.dirname(adapter_file), subfolder='',
        weight_name=osp.basename(adapter_file),
        image_encoder_folder=folders['image_encoder'])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def trained_model(variant, tiny_families, checkpoint_file):
    model = build_tiny_model(tiny_families, variant)
    state = torch.load(checkpoint_file, weights_only=True)['state_dict']
    model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('fmt', ['safetensors', 'bin'])
def test_load_ip_adapter_gives_our_weights(tiny_families, convert_tiny, variant,
                                           fmt):
    files, folders = convert_tiny(variant), tiny_families[family_of(variant)]
    pipe = diffusers_pipeline(variant, folders, files[fmt], with_encoder=False)
    model = trained_model(variant, tiny_families, files['checkpoint'])
    ours = cross_attention_layers(model.unet)
    theirs = cross_attention_layers(pipe.unet)
    assert list(ours) == list(theirs)
    for name in ours:
        for kind in ('to_k_ip', 'to_v_ip'):
            assert torch.equal(getattr(ours[name].processor, kind)[0].weight,
                               getattr(theirs[name].processor, kind)[0].weight)
    projection = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    ours = model.image_projection
    # diffusers built the same class from the file (ImageProjection or the
    # Plus Resampler), with the same weights under diffusers' own names.
    assert type(projection) is type(ours).__mro__[1]
    theirs = projection.state_dict()
    assert set(theirs) == set(ours.state_dict())
    assert all(torch.equal(theirs[k], v) for k, v in ours.state_dict().items())


@pytest.mark.parametrize('variant', VARIANTS)
def test_unet_output_equals_diffusers(tiny_families, convert_tiny, variant):
    files, folders = convert_tiny(variant), tiny_families[family_of(variant)]
    pipe = diffusers_pipeline(variant, folders, files['safetensors'])
    model = trained_model(variant, tiny_families, files['checkpoint'])
    width = model.unet.config.cross_attention_dim
    torch.manual_seed(0)
    latents = torch.randn(2, 4, 32, 32)
    timesteps = torch.tensor([10, 700])
    text = torch.randn(2, 77, width)
    image_embeds = model.encode_image(torch.randn(2, 3, 224, 224))
    added = {}
    if family_of(variant) == 'sdxl':
        added = dict(text_embeds=torch.randn(2, 32),
                     time_ids=torch.tensor([[512., 512, 0, 0, 64, 64]] * 2))
    with torch.no_grad():
        ours = model.unet(latents, timesteps, encoder_hidden_states=(
            text, [model.image_projection(image_embeds)]),
            added_cond_kwargs=added or None).sample
        theirs = pipe.unet(latents, timesteps, encoder_hidden_states=text,
                           added_cond_kwargs=dict(
                               added, image_embeds=[image_embeds[:, None]])
                           ).sample
    assert (ours - theirs).abs().max() <= 1e-5


@pytest.mark.parametrize('variant', VARIANTS)
def test_infer_matches_diffusers_for_the_same_seed(tiny_families, convert_tiny,
                                                   variant, tmp_path):
    files, folders = convert_tiny(variant), tiny_families[family_of(variant)]
    options = [f'{k}={v}' for k, v in tiny_overrides(folders).items()]
    common = ['--image', CAT, '--steps', '4', '--seed', '3', '--scale', '0.7',
              '--cfg-options', *options]
    config = TINY_CONFIGS[variant]
    run_tool('infer.py', config, files['safetensors'], *common,
             '--out', tmp_path / 'from_file.png')
    run_tool('infer.py', config, files['checkpoint'], *common,
             '--num-images', '2', '--out', tmp_path / 'from_ckpt.png')
    ours = np.asarray(Image.open(tmp_path / 'from_file.png'), dtype=np.int16)

    pipe = diffusers_pipeline(variant, folders, files['safetensors'])
    pipe.set_ip_adapter_scale(0.7)
    reference = Image.open(CAT).convert('RGB')
    theirs = pipe(PROMPT, negative_prompt=NEGATIVE, ip_adapter_image=reference,
                  num_inference_steps=4, guidance_scale=7.5,
                  generator=torch.Generator('cpu').manual_seed(3),
                  output_type='np').images[0]
    theirs = (theirs * 255).round().astype(np.int16)
    assert ours.shape == theirs.shape == (64, 64, 3)
    assert np.abs(ours - theirs).max() <= 1  # ≤ 1/255
    # A training checkpoint gives the image of its converted file (the batch
    # of two runs other matmul shapes, hence the same 1/255 tolerance).
    first = np.asarray(Image.open(tmp_path / 'from_ckpt_0.png'), dtype=np.int16)
    assert np.abs(first - ours).max() <= 1
    assert (tmp_path / 'from_ckpt_1.png').exists()


def test_infer_errors_are_one_line(tiny_family, converted, tmp_path):
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'\xff\xd8\xff not really a jpeg')
    error = one_line_error(run_tool(
        'infer.py', TINY_CONFIG, converted['safetensors'], '--image', broken,
        '--cfg-options', *options, check=False))
    assert str(broken) in error and 'not an image' in error

    wide = tmp_path / 'wide_encoder'  # an image encoder with 24-d embeddings
    build_family_component('tiny_clip_vision', 'image_encoder').save_pretrained(
        wide)
    config = json.loads((wide / 'config.json').read_text())
    config['projection_dim'] = 24
    (wide / 'config.json').write_text(json.dumps(config))
    CLIPVisionModelWithProjection.from_pretrained(
        wide, ignore_mismatched_sizes=True).save_pretrained(wide)
    error = one_line_error(run_tool(
        'infer.py', TINY_CONFIG, converted['safetensors'], '--image', CAT,
        '--cfg-options', *options, f'model.image_encoder_path={wide}',
        check=False))
    assert 'expects 16-d image embeddings' in error and 'gives 24' in error


def test_sd15_adapter_with_sdxl_config_is_one_line(tiny_families, converted):
    options = [f'{k}={v}' for k, v in tiny_overrides(
        tiny_families['sdxl']).items()]
    error = one_line_error(run_tool(
        'infer.py', TINY_CONFIGS['sdxl'], converted['safetensors'], '--image',
        CAT, '--cfg-options', *options, check=False))
    assert 'trained for a 32-d cross-attention' in error
    assert 'configured base model has 64' in error
