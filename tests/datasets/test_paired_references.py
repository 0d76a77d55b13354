"""Paired records: the image encoder reads the reference, the VAE the target."""

import json

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from PIL import Image

from diffengine_ipa.datasets import IPAdapterDataset, LoadImage
from diffengine_ipa.datasets.ip_adapter_dataset import draw_reference
from diffengine_ipa.registry import DATASETS, MODELS

from ..conftest import TINY_CONFIGS, family_of, load_tiny_config

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


def solid(path, color, size=(96, 80)):
    Image.new('RGB', size, color).save(path)
    return path.name


def paired_folder(tmp_path, references):
    target = solid(tmp_path / 'target.png', RED)
    refs = [
        solid(tmp_path / f'ref{i}.png', color) for i, color in enumerate(references)
    ]
    record = {
        'image_file': target,
        'text': 'a red card',
        'reference_file': refs[0] if len(refs) == 1 else refs,
    }
    (tmp_path / 'data.json').write_text(
        json.dumps(
            [record, dict(record, image_file=solid(tmp_path / 'other.png', GREEN))]
        )
    )
    return str(tmp_path / 'data.json')


def test_reference_draw_is_seeded_per_sample_and_varies():
    paths = [f'r{i}' for i in range(8)]
    draws = [draw_reference(paths, 0, 0, i) for i in range(32)]
    assert draws == [draw_reference(paths, 0, 0, i) for i in range(32)]
    assert len(set(draws)) > 3  # several references are used
    assert draws != [draw_reference(paths, 0, 1, i) for i in range(32)]
    assert draw_reference(['only'], 5, 5, 5) == 'only'


def test_a_bad_reference_makes_the_record_unusable(tmp_path):
    solid(tmp_path / 'a.png', RED)
    (tmp_path / 'data.json').write_text(
        json.dumps(
            [
                {'image_file': 'a.png', 'text': 'x', 'reference_file': 'gone.png'},
                {'image_file': 'a.png', 'text': 'y', 'reference_file': []},
            ]
        )
    )
    with pytest.raises(Exception) as err:
        IPAdapterDataset(ann_file=str(tmp_path / 'data.json')).full_init()
    message = str(err.value)
    assert 'reference_file gone.png: no such file' in message
    assert '"reference_file" must be a path or a non-empty list' in message


@pytest.mark.parametrize('variant', ['sd15', 'sdxl', 'sd3', 'flux'])
def test_reference_reaches_the_image_encoder_target_the_vae(
    variant, tiny_families, tmp_path
):
    cfg = load_tiny_config(
        tiny_families[family_of(variant)], tmp_path / 'work', TINY_CONFIGS[variant]
    )
    init_default_scope('diffengine_ipa')
    dataset = DATASETS.build(
        dict(cfg.train_dataloader.dataset, ann_file=paired_folder(tmp_path, [BLUE]))
    )
    batch = default_collate([dataset[0], dataset[1]])
    model = MODELS.build(cfg.model)
    seen = {}
    model.image_encoder.register_forward_pre_hook(
        lambda module, args: seen.setdefault('encoder', args[0].clone())
    )
    model.family.vae.encoder.register_forward_pre_hook(
        lambda module, args: seen.setdefault('vae', args[0].clone())
    )
    model.drop_rates = dict(text_rate=0, image_rate=0, both_rate=0)
    data = model.data_preprocessor(batch, training=True)
    loss = model(**data, mode='loss')['loss']
    assert torch.isfinite(loss)

    # the VAE reads the targets (red, green), in [-1, 1]
    vae = seen['vae']  # (B, 3, H, W)
    red = (torch.tensor(RED) / 127.5 - 1).view(3, 1, 1)
    assert torch.allclose(vae[0], red.expand_as(vae[0]), atol=0.02)
    assert not torch.allclose(vae[1], red.expand_as(vae[1]), atol=0.2)
    # the image encoder reads the blue reference, for both records
    expected = (
        dataset.pipeline.transforms[1]
        .processor(images=Image.new('RGB', (96, 80), BLUE), return_tensors='pt')
        .pixel_values[0]
    )
    encoder = seen['encoder']  # (B, 3, S, S)
    assert torch.allclose(encoder[0], expected, atol=1e-5)
    assert torch.allclose(encoder[1], expected, atol=1e-5)
    target_pixels = (
        dataset.pipeline.transforms[1]
        .processor(images=Image.new('RGB', (96, 80), RED), return_tensors='pt')
        .pixel_values[0]
    )
    assert not torch.allclose(encoder[0], target_pixels, atol=0.1)


def test_several_references_one_drawn_per_sample_and_epoch(tmp_path):
    dataset = IPAdapterDataset(
        ann_file=paired_folder(tmp_path, [BLUE, GREEN, RED]), pipeline=[LoadImage()]
    )
    colors = set()
    for epoch in range(6):
        dataset.set_draw_epoch(0, epoch)
        first = dataset[0]['reference_img']
        dataset.set_draw_epoch(0, epoch)
        assert np.array_equal(
            np.asarray(dataset[0]['reference_img']), np.asarray(first)
        )  # reproducible
        colors.add(first.getpixel((0, 0)))
    assert len(colors) > 1
