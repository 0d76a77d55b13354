"""Inputs of the wrong kind or count are one line naming what is wrong:
masks and references that do not agree, a folder of another kind given as
ControlNet, base model or image encoder, an encoder of another width for a
second adapter; in a jobs file, on the job's line."""

import json
import os.path as osp

import pytest
from PIL import Image

from diffengine_ipa.apis import run_jobs
from diffengine_ipa.errors import UserError

from .test_inferencer import CAT, PROMPT, ROCKET, inferencer


@pytest.fixture(scope='module')
def sd15(tiny_families, converted):
    return inferencer(tiny_families, 'sd15', converted['safetensors'])


def mask(tmp_path=None):
    image = Image.new('L', (64, 64))
    image.paste(255, (0, 0, 32, 64))
    if tmp_path is None:
        return image
    image.save(tmp_path / 'mask.png')
    return str(tmp_path / 'mask.png')


@pytest.mark.parametrize(
    'images, masks, counts',
    [
        (CAT, [mask(), mask()], '1 reference image(s) and 2 mask(s)'),
        ([CAT, ROCKET], [mask()], '2 reference image(s) and 1 mask(s)'),
        ([CAT, ROCKET], [mask(), mask(), mask()], '2 reference image(s) and 3 mask(s)'),
    ],
)
def test_masks_and_references_must_agree(sd15, images, masks, counts):
    with pytest.raises(UserError) as err:
        sd15(PROMPT, images, masks=masks, steps=2)
    assert str(err.value) == (
        f'masks: there are {counts}; give one mask per reference, in the same '
        'order (white = where that reference applies)'
    )


def test_masks_and_references_in_a_jobs_file(sd15, tmp_path):
    jobs = tmp_path / 'jobs.jsonl'
    lines = [
        dict(prompt=PROMPT, image=[CAT, ROCKET], mask=[mask(tmp_path)], steps=2),
        dict(prompt=PROMPT, image=CAT, mask=mask(tmp_path), steps=2),
    ]
    jobs.write_text('\n'.join(json.dumps(line) for line in lines))
    result = run_jobs(sd15, str(jobs), str(tmp_path / 'out'))
    assert result['errors'] == [
        f'{jobs}:1: masks: there are 2 reference image(s) and 1 mask(s); give one '
        'mask per reference, in the same order (white = where that reference '
        'applies)'
    ]
    assert len(result['images']) == 1


@pytest.mark.parametrize(
    'where, folder, holds',
    [
        (
            'controlnet',
            'unet',
            'UNet2DConditionModel (a diffusers model), not a ControlNetModel',
        ),
        (
            'controlnet',
            'image_encoder',
            'CLIPVisionModelWithProjection (a transformers model), not a '
            'ControlNetModel',
        ),
        (
            'controlnet',
            '',
            'StableDiffusionPipeline (a diffusers pipeline), not a ControlNetModel',
        ),
        (
            'base_model',
            'unet',
            'UNet2DConditionModel (a diffusers model), not a whole '
            'StableDiffusionPipeline folder (with model_index.json); give the '
            'folder above it, which holds model_index.json',
        ),
        (
            'encoder',
            'vae',
            'AutoencoderKL (a diffusers model), not a CLIPVisionModelWithProjection',
        ),
        (
            'encoder',
            '',
            'StableDiffusionPipeline (a diffusers pipeline), not a '
            'CLIPVisionModelWithProjection',
        ),
    ],
)
def test_a_folder_of_the_wrong_kind_is_named(
    tiny_families, converted, where, folder, holds
):
    base = tiny_families['sd15']['base']
    path = osp.join(base, folder) if folder else base
    adapter = converted['safetensors']
    if where == 'encoder':
        args, field = (
            [[adapter, f'{adapter}@{path}']],
            (f'the image encoder {path} of adapter 2 ({adapter}@...)'),
        )
    else:
        args, field = [adapter], f'--{where.replace("_", "-")}'
    kwargs = {} if where == 'encoder' else {where: path}
    with pytest.raises(UserError) as err:
        inferencer(tiny_families, 'sd15', *args, **kwargs)
    assert str(err.value) == f'{field}: {osp.abspath(path)} holds {holds}'


def test_an_encoder_of_another_width_for_a_second_adapter(
    tiny_families, converted, tmp_path
):
    from diffengine_ipa.models.random_models import write_image_encoder

    adapter = converted['safetensors']
    encoder = write_image_encoder('mid_clip_vision', str(tmp_path / 'mid'))
    with pytest.raises(UserError) as err:
        inferencer(tiny_families, 'sd15', [adapter, f'{adapter}@{encoder}'])
    assert str(err.value) == (
        f'{adapter}: the adapter expects 16-d image embeddings (768: CLIP '
        'ViT-L/14, 1024: ViT-H/14, 1280: ViT-bigG/14); the image encoder '
        f'{encoder} of adapter 2 ({adapter}@...) gives 256'
    )
