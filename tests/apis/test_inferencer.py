"""The inferencer's features, each against plain diffusers given the same
inputs and seed (≤ 1/255): several references, two adapters, per-block
scales, region masks, a negative image, saved image embeddings, ControlNet,
another base checkpoint; models loaded once; one line where a family's
pipeline lacks a feature."""

import os.path as osp
import re

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from diffengine_ipa.apis import (
    AdapterSpec,
    IPAdapterInferencer,
    load_image_embeds,
    save_image_embeds,
)
from diffengine_ipa.errors import UserError
from diffengine_ipa.user_config import prepare_config

from ..conftest import REPO, TINY_CONFIGS, family_of, tiny_overrides
from ..tools.diffusers_side import diffusers_pipeline, diffusers_pixels
from ..tools.published_files import official_file

IMAGES = osp.join(REPO, 'data/mini_dataset/images')
CAT, ROCKET = f'{IMAGES}/cat.jpg', f'{IMAGES}/rocket.jpg'
PROMPT = 'a photo'


def config(tiny_families, variant):
    from mmengine.config import Config

    cfg = Config.fromfile(TINY_CONFIGS[variant])
    cfg.merge_from_dict(tiny_overrides(tiny_families[family_of(variant)]))
    return prepare_config(cfg, TINY_CONFIGS[variant])


def inferencer(tiny_families, variant, adapters, **kwargs):
    return IPAdapterInferencer(
        config(tiny_families, variant), adapters, device='cpu', **kwargs
    )


def rgb(path):
    return Image.open(path).convert('RGB')


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def theirs(pipe, variant, **kwargs) -> np.ndarray:
    """diffusers' image for PROMPT at 4 steps, seed 3, as uint8 values."""
    return diffusers_pixels(pipe, family_of(variant), PROMPT, **kwargs)


def same(ours: Image.Image, expected: np.ndarray) -> bool:
    return (
        pixels(ours).shape == expected.shape
        and np.abs(pixels(ours) - expected).max() <= 1
    )


def test_several_references_for_one_adapter(tiny_families, converted):
    ours = inferencer(tiny_families, 'sd15', converted['safetensors'])(
        PROMPT, [CAT, ROCKET], steps=4, seed=3
    )[0]
    pipe = diffusers_pipeline('sd15', tiny_families['sd15'], converted['safetensors'])
    assert same(ours, theirs(pipe, 'sd15', ip_adapter_image=[[rgb(CAT), rgb(ROCKET)]]))
    one = inferencer(tiny_families, 'sd15', converted['safetensors'])(
        PROMPT, CAT, steps=4, seed=3
    )[0]
    assert not same(one, pixels(ours))  # the second reference matters


def test_two_adapters_at_once(tiny_families, converted, tmp_path):
    """The trained adapter with the scale 0.6 reading the cat, a published
    one with 0.8 reading the rocket."""
    other = tmp_path / 'other.safetensors'
    official_file(tiny_families, 'sd15', other, seed=5)
    ours = inferencer(
        tiny_families, 'sd15', [f'{converted["safetensors"]}:0.6', f'{other}:0.8']
    )(PROMPT, [CAT, ROCKET], steps=4, seed=3)[0]
    pipe = diffusers_pipeline('sd15', tiny_families['sd15'], converted['safetensors'])
    pipe.unload_ip_adapter()
    encoder = tiny_families['sd15']['image_encoder']
    pipe.load_ip_adapter(
        [osp.dirname(converted['safetensors']), str(tmp_path)],
        subfolder=['', ''],
        weight_name=['ip_adapter.safetensors', 'other.safetensors'],
        image_encoder_folder=encoder,
    )
    pipe.set_ip_adapter_scale([0.6, 0.8])
    assert same(ours, theirs(pipe, 'sd15', ip_adapter_image=[rgb(CAT), rgb(ROCKET)]))


@pytest.mark.parametrize(
    'variant, scale',
    [
        ('sdxl', {'up': {'block_0': [0.0, 1.0]}}),  # InstantStyle's form
        ('sd15', {'down': {'block_0': [1.0]}, 'up': {'block_1': [0.0, 1.0]}}),
        ('flux', [0.0, 1.0]),  # one per double-stream block
    ],
)
def test_per_block_scales(tiny_families, convert_tiny, variant, scale):
    files = convert_tiny(variant)
    ours = inferencer(tiny_families, variant, files['safetensors'])(
        PROMPT, CAT, scale=scale, steps=4, seed=3
    )[0]
    pipe = diffusers_pipeline(
        variant, tiny_families[family_of(variant)], files['safetensors']
    )
    pipe.set_ip_adapter_scale(scale)
    assert same(ours, theirs(pipe, variant, ip_adapter_image=rgb(CAT)))


def test_presets_are_instantstyles_sdxl_blocks():
    from diffengine_ipa.models import SD15, SDXL

    assert SDXL.generation.adapter_scale('style', 1) == {
        'up': {'block_0': [0.0, 1.0, 0.0]}
    }
    assert (
        SDXL.generation.adapter_scale('layout', 2)
        == [{'down': {'block_2': [0.0, 1.0]}}] * 2
    )
    with pytest.raises(
        UserError, match="InstantStyle's style and layout blocks are SDXL's"
    ):
        SD15.generation.adapter_scale('style', 1)


def test_one_scale_parser_for_the_command_line_paths_and_the_page():
    from diffengine_ipa.apis import AdapterSpec
    from diffengine_ipa.apis.inference import parse_scale
    from diffengine_ipa.webui.generation import scale_argument

    assert parse_scale('0.5') == 0.5 == scale_argument(0.5)
    assert parse_scale('0.5,0.8') == [0.5, 0.8]
    assert parse_scale('{"up": {"block_0": [0, 1, 0]}}') == {
        'up': {'block_0': [0, 1, 0]}
    }
    assert parse_scale('style') == 'style' == scale_argument(0.5, 'style')
    assert parse_scale(None) is None
    assert AdapterSpec.parse('runs/a:0.7').scale == 0.7
    assert AdapterSpec.parse('C:/runs/a').path == 'C:/runs/a'  # the path's colon
    for bad, line in (('-1', '0 or more'), ('nan', 'finite'), ('{x', 'not JSON')):
        with pytest.raises(UserError, match=line):
            parse_scale(bad, '--scale')
    with pytest.raises(UserError, match='0 or more'):
        AdapterSpec.parse('runs/a:-1')


def test_region_masks(tiny_families, converted):
    left = Image.new('L', (64, 64), 0)
    left.paste(255, (0, 0, 32, 64))
    right = Image.eval(left, lambda v: 255 - v)
    ours = inferencer(tiny_families, 'sd15', converted['safetensors'])(
        PROMPT, [CAT, ROCKET], masks=[left, right], scale=[[0.7, 0.7]], steps=4, seed=3
    )[0]
    pipe = diffusers_pipeline('sd15', tiny_families['sd15'], converted['safetensors'])
    pipe.set_ip_adapter_scale([[0.7, 0.7]])
    processor = diffusers.image_processor.IPAdapterMaskProcessor()
    masks = processor.preprocess([left, right], height=64, width=64)
    masks = [masks.reshape(1, masks.shape[0], masks.shape[2], masks.shape[3])]
    assert same(
        ours,
        theirs(
            pipe,
            'sd15',
            ip_adapter_image=[[rgb(CAT), rgb(ROCKET)]],
            cross_attention_kwargs={'ip_adapter_masks': masks},
        ),
    )


@pytest.mark.parametrize('variant', ['sd15', 'flux'])
def test_negative_image(tiny_families, convert_tiny, variant):
    files = convert_tiny(variant)
    ours = inferencer(tiny_families, variant, files['safetensors'])(
        PROMPT,
        CAT,
        negative_images=ROCKET,
        steps=4,
        seed=3,
        guidance_scale=7.5 if variant == 'sd15' else None,
    )[0]
    pipe = diffusers_pipeline(
        variant, tiny_families[family_of(variant)], files['safetensors']
    )
    if variant == 'flux':
        expected = theirs(
            pipe,
            variant,
            ip_adapter_image=rgb(CAT),
            negative_ip_adapter_image=rgb(ROCKET),
        )
    else:  # the SD pipelines take a negative image as precomputed embeds
        image, _ = pipe.encode_image(rgb(CAT), 'cpu', 1)
        negative, _ = pipe.encode_image(rgb(ROCKET), 'cpu', 1)
        expected = theirs(
            pipe, variant, ip_adapter_image_embeds=[torch.stack([negative, image])]
        )
    assert same(ours, expected)


def test_saved_embeddings_give_the_same_image(tiny_families, convert_tiny, tmp_path):
    files = convert_tiny('sd3')
    generator = inferencer(tiny_families, 'sd3', files['safetensors'])
    direct = generator(PROMPT, CAT, steps=4, seed=3)[0]
    save_image_embeds(str(tmp_path / 'cat.safetensors'), [generator.encode(CAT)])
    (embeds,) = load_image_embeds(str(tmp_path / 'cat.safetensors'))
    assert embeds.shape == (1, 144, 32)  # SigLIP's 12 × 12 tokens
    reused = generator(PROMPT, image_embeds=[embeds], steps=4, seed=3)[0]
    assert np.array_equal(pixels(direct), pixels(reused))


def tiny_controlnet(tiny_families, variant, folder) -> str:
    """A ControlNet of the tiny family, built from its denoiser."""
    base = tiny_families[variant]['base']
    if variant == 'flux':
        transformer = diffusers.FluxTransformer2DModel.from_pretrained(
            base, subfolder='transformer'
        )
        controlnet = diffusers.FluxControlNetModel.from_transformer(
            transformer,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
        )
    else:
        unet = diffusers.UNet2DConditionModel.from_pretrained(base, subfolder='unet')
        # Its condition downsampled 2× (to the tiny VAE latents), not 8×.
        controlnet = diffusers.ControlNetModel.from_unet(
            unet, conditioning_embedding_out_channels=(16, 32)
        )
    controlnet.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize('variant', ['sd15', 'flux'])
def test_controlnet(tiny_families, convert_tiny, variant, tmp_path):
    files = convert_tiny(variant)
    folder = tiny_controlnet(tiny_families, variant, tmp_path / 'controlnet')
    edges = Image.new('RGB', (64, 64))
    edges.paste((255, 255, 255), (16, 16, 48, 48))
    ours = inferencer(tiny_families, variant, files['safetensors'], controlnet=folder)(
        PROMPT, CAT, control_image=edges, control_scale=0.5, steps=4, seed=3
    )[0]
    if variant == 'flux':
        pipe = diffusers.FluxControlNetPipeline.from_pretrained(
            tiny_families['flux']['base'],
            controlnet=diffusers.FluxControlNetModel.from_pretrained(folder),
        )
        pipe.load_ip_adapter(
            osp.dirname(files['safetensors']),
            weight_name='ip_adapter.safetensors',
            image_encoder_pretrained_model_name_or_path=tiny_families['flux'][
                'image_encoder'
            ],
            image_encoder_dtype=torch.float32,
        )
        control = dict(control_image=edges)
    else:
        pipe = diffusers.StableDiffusionControlNetPipeline.from_pretrained(
            tiny_families['sd15']['base'],
            controlnet=diffusers.ControlNetModel.from_pretrained(folder),
            safety_checker=None,
            requires_safety_checker=False,
        )
        pipe.load_ip_adapter(
            osp.dirname(files['safetensors']),
            subfolder='',
            weight_name='ip_adapter.safetensors',
            image_encoder_folder=tiny_families['sd15']['image_encoder'],
        )
        control = dict(image=edges)
    pipe.set_progress_bar_config(disable=True)
    assert same(
        ours,
        theirs(
            pipe,
            variant,
            ip_adapter_image=rgb(CAT),
            controlnet_conditioning_scale=0.5,
            **control,
        ),
    )


def test_another_base_checkpoint(tiny_families, converted, tmp_path):
    """A base fine-tuned from the same model (here: its UNet's weights
    changed) generates with the adapter, as diffusers does from it."""
    base = tiny_families['sd15']['base']
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(base)
    with torch.no_grad():
        for param in pipe.unet.parameters():
            param.add_(0.01 * torch.randn_like(param))
    pipe.save_pretrained(tmp_path / 'finetuned')
    ours = inferencer(
        tiny_families,
        'sd15',
        converted['safetensors'],
        base_model=str(tmp_path / 'finetuned'),
    )(PROMPT, CAT, steps=4, seed=3)[0]
    folders = dict(tiny_families['sd15'], base=str(tmp_path / 'finetuned'))
    pipe = diffusers_pipeline('sd15', folders, converted['safetensors'])
    assert same(ours, theirs(pipe, 'sd15', ip_adapter_image=rgb(CAT)))
    with pytest.raises(UserError, match='no file'):
        inferencer(
            tiny_families,
            'sd15',
            converted['safetensors'],
            base_model=str(tmp_path / 'missing.safetensors'),
        )


def test_models_load_once_for_many_calls(tiny_families, converted, monkeypatch):
    from diffusers.models.modeling_utils import ModelMixin
    from transformers import PreTrainedModel

    generator = inferencer(tiny_families, 'sd15', converted['safetensors'])
    loads = []
    for cls in (ModelMixin, PreTrainedModel, diffusers.DiffusionPipeline):
        original = cls.from_pretrained.__func__

        def counting(klass, *args, _original=original, **kwargs):
            loads.append(klass.__name__)
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, 'from_pretrained', classmethod(counting))
    for seed in range(3):
        generator(PROMPT, CAT, steps=2, seed=seed)
    assert loads == []


@pytest.mark.parametrize(
    'variant, call, message',
    [
        (
            'sd3',
            dict(adapters=2),
            'several adapters: StableDiffusion3Pipeline takes one IP-Adapter',
        ),
        ('sd3', dict(images=[CAT, ROCKET]), 'several reference images'),
        ('sd3', dict(scale={'up': {'block_0': [1.0]}}), 'takes one number'),
        ('sd3', dict(masks=[CAT]), "region masks: StableDiffusion3Pipeline's"),
        ('flux', dict(masks=[CAT]), "region masks: FluxPipeline's"),
        ('sd15', dict(scale='style'), "are SDXL's); give per-block scales"),
    ],
)
def test_a_missing_feature_is_one_line(
    tiny_families, convert_tiny, variant, call, message
):
    adapter = convert_tiny(variant)['safetensors']
    count = call.pop('adapters', 1)
    with pytest.raises(UserError, match=re.escape(message)) as err:
        generator = inferencer(tiny_families, variant, [adapter] * count)
        generator(PROMPT, call.pop('images', CAT), steps=2, **call)
    assert '\n' not in str(err.value)


def test_adapter_arguments_parse():
    spec = AdapterSpec.parse(
        'work/style.safetensors:0.6@h94/IP-Adapter//models/image_encoder'
    )
    assert spec == AdapterSpec(
        'work/style.safetensors',
        0.6,
        dict(
            pretrained_model_name_or_path='h94/IP-Adapter',
            subfolder='models/image_encoder',
        ),
    )
    assert AdapterSpec.parse('face.bin') == AdapterSpec('face.bin', 1.0, None)
