"""The training pipeline: shapes, ranges, crops, and reference preprocessing
equal to what diffusers' pipelines feed the image encoder."""

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from PIL import Image
from transformers import CLIPImageProcessor, SiglipImageProcessor

from diffengine_ipa.datasets.transforms import (
    CenterCrop,
    ComputeTimeIds,
    LoadImage,
    PackInputs,
    PreprocessReference,
    RandomCrop,
    RandomHorizontalFlip,
    ResizeShortEdge,
    ToVAEInput,
)
from diffengine_ipa.errors import DatasetError

from ..conftest import REPO

CAT = osp.join(REPO, 'data/mini_dataset/images/cat.jpg')
TINY_CLIP = dict(
    type='CLIPImageEncoder', pretrained_model_name_or_path='random:tiny_clip_vision'
)


def test_pipeline_packs_model_inputs():
    pipeline = Compose(
        [
            LoadImage(),
            PreprocessReference(TINY_CLIP),
            ResizeShortEdge(64),
            CenterCrop(64),
            ToVAEInput(),
            PackInputs(),
        ]
    )
    out = pipeline(dict(img_path=CAT, text='a cat'))
    inputs = out['inputs']
    assert inputs['pixel_values'].shape == (3, 64, 64)
    assert -1 <= inputs['pixel_values'].min() < inputs['pixel_values'].max() <= 1
    assert inputs['reference_pixel_values'].shape == (3, 224, 224)
    assert inputs['text'] == 'a cat'
    assert out['data_samples'] == dict(
        img_path=CAT, ori_shape=(512, 512), crop_top_left=(0, 0)
    )


def test_clip_preprocessing_matches_diffusers_feature_extractor():
    image = Image.open(CAT).convert('RGB').resize((300, 200))
    ours = PreprocessReference(TINY_CLIP)(dict(img=image))
    # What StableDiffusionPipeline / load_ip_adapter use by default.
    reference = CLIPImageProcessor(size=224, crop_size=224)(
        image, return_tensors='pt'
    ).pixel_values[0]
    assert torch.equal(ours['reference_pixel_values'], reference)


@pytest.mark.parametrize(
    'architecture, size',
    [('tiny_clip_vision_32', 32), ('tiny_siglip_384', 384), ('tiny_dinov2_32', 32)],
)
def test_preprocessing_comes_from_the_encoders_own_config(architecture, size, tmp_path):
    """The processor saved beside the encoder decides the size (no config
    states it), and a folder without one gets the processor class's defaults
    at the model's image size, as diffusers' load_ip_adapter does."""
    from diffengine_ipa.models.random_models import write_image_encoder
    from diffengine_ipa.registry import MODELS

    folder = write_image_encoder(architecture, str(tmp_path / 'encoder'))
    kind = MODELS.get(
        'Dinov2ImageEncoder'
        if 'dinov2' in architecture
        else 'SiglipImageEncoder'
        if 'siglip' in architecture
        else 'CLIPImageEncoder'
    )
    image = Image.open(CAT).convert('RGB').resize((300, 200))
    encoder = dict(type=kind.__name__, pretrained_model_name_or_path=folder)
    pixels = PreprocessReference(encoder)(dict(img=image))['reference_pixel_values']
    assert pixels.shape == (3, size, size)
    if 'siglip' in architecture:  # SD3IPAdapterMixin's processor
        expected = SiglipImageProcessor.from_pretrained(folder)(
            image, return_tensors='pt'
        ).pixel_values[0]
        assert torch.equal(pixels, expected)
    (tmp_path / 'encoder' / 'preprocessor_config.json').unlink()
    fallback = PreprocessReference(encoder)(dict(img=image))
    assert fallback['reference_pixel_values'].shape == (3, size, size)
    bigger = PreprocessReference(
        dict(
            encoder,
            preprocess=dict(
                size=dict(height=48, width=48), crop_size=dict(height=48, width=48)
            ),
        )
    )
    assert bigger(dict(img=image))['reference_pixel_values'].shape == (3, 48, 48)


def test_resize_short_edge_and_crops_record_position():
    image = Image.new('RGB', (300, 200))
    out = ResizeShortEdge(100)(dict(img=image, ori_shape=(200, 300)))
    assert out['img'].size == (150, 100) and out['resized_shape'] == (100, 150)
    centre = CenterCrop(100)(dict(out))
    assert centre['img'].size == (100, 100)
    assert centre['crop_top_left'] == (0, 25)
    np.random.seed(0)
    lefts = {RandomCrop(100)(dict(out))['crop_top_left'][1] for _ in range(20)}
    assert len(lefts) > 1 and all(0 <= x <= 50 for x in lefts)


def test_flip_mirrors_image_and_crop():
    array = np.zeros((100, 150, 3), np.uint8)
    array[:, :10] = 255  # a white band on the left
    results = dict(
        img=Image.fromarray(array), ori_shape=(100, 150), resized_shape=(100, 150)
    )
    results = CenterCrop(100)(results)
    results['crop_top_left'] = (0, 5)
    flipped = RandomHorizontalFlip(prob=1.0)(dict(results))
    assert (
        np.asarray(flipped['img'])[:, -1].mean()
        == np.asarray(results['img'])[:, 0].mean()
    )
    assert flipped['crop_top_left'] == (0, 150 - 5 - 100)
    assert RandomHorizontalFlip(prob=0.0)(dict(results)) == results


def test_crop_larger_than_image_and_unreadable_file(tmp_path):
    with pytest.raises(DatasetError, match='smaller than the 64 px crop'):
        CenterCrop(64)(dict(img=Image.new('RGB', (32, 32)), img_path='x.png'))
    bad = tmp_path / 'bad.png'
    bad.write_text('not an image')
    with pytest.raises(DatasetError, match=r'bad.png: not an image \(PIL'):
        LoadImage()(dict(img_path=str(bad)))


def test_time_ids_follow_the_crop_actually_applied(tmp_path):
    """SDXL's time ids: original size, the crop's top-left, target size."""
    rng = np.random.default_rng(0)
    array = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    path = tmp_path / 'wide.png'
    Image.fromarray(array).save(path)
    pipeline = Compose(
        [
            LoadImage(),
            ResizeShortEdge(100),
            RandomCrop(64),
            ComputeTimeIds(),
            ToVAEInput(),
            PackInputs(input_keys=('pixel_values', 'time_ids')),
        ]
    )
    resized = np.asarray(Image.fromarray(array).resize((150, 100), Image.BILINEAR))
    np.random.seed(3)
    seen = set()
    for _ in range(8):
        out = pipeline(dict(img_path=str(path), text='noise'))
        time_ids = out['inputs']['time_ids'].tolist()
        top, left = int(time_ids[2]), int(time_ids[3])
        assert time_ids[:2] == [200, 300] and time_ids[4:] == [64, 64]
        assert out['data_samples']['crop_top_left'] == (top, left)
        # The training pixels are exactly that window of the resized image.
        expected = resized[top : top + 64, left : left + 64] / 127.5 - 1
        pixels = out['inputs']['pixel_values'].permute(1, 2, 0).numpy()
        assert np.allclose(pixels, expected, atol=1e-6)
        seen.add((top, left))
    assert len(seen) > 1


def test_sizeless_resize_and_crop_take_the_resolution():
    from diffengine_ipa.datasets.transforms import fill_resolution

    pipeline = [
        dict(type='LoadImage'),
        dict(type='ResizeShortEdge'),
        dict(type='RandomCrop'),
        dict(type='CenterCrop', size=32),
    ]
    assert fill_resolution(pipeline, 48) == [
        dict(type='LoadImage'),
        dict(type='ResizeShortEdge', size=48),
        dict(type='RandomCrop', size=48),
        dict(type='CenterCrop', size=32),
    ]
    assert fill_resolution(pipeline, None) == pipeline
    with pytest.raises(DatasetError, match='CenterCrop has no size'):
        CenterCrop()
