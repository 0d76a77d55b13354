"""Training from the embedding cache holds no encoder it does not use;
generation loads what it needs and gives the same images."""

import json
import shutil

import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from PIL import Image

from diffengine_ipa.apis import build_embedding_cache
from diffengine_ipa.models.generation import live_pipeline
from diffengine_ipa.models.resident_encoders import (
    ReleasedEncoder,
    release_encoders,
    released_encoders,
    resident_encoders,
)

from ..conftest import REPO, build_tiny_model, load_tiny_config

FREED = ['family.text_encoder', 'image_encoder', 'family.vae.encoder']


def generate(model) -> np.ndarray:
    reference = Image.new('RGB', (64, 64), (30, 160, 90))
    with torch.no_grad(), live_pipeline(model) as pipe:
        (image,) = pipe(reference, 'a cat', '', 1.0, 2, 5.0, 0, 1, 64, 64)
    return np.asarray(image)


def test_released_encoders_are_freed_and_come_back_to_generate(tiny_families):
    model = build_tiny_model(tiny_families, 'sd15')
    before = generate(model)
    fingerprint = model.encoder_fingerprint()
    assert release_encoders(model) == FREED
    assert released_encoders(model) == FREED
    assert isinstance(model.family.text_encoder, ReleasedEncoder)
    assert not any(p.numel() for p in model.image_encoder.parameters())
    assert not any(p.numel() for p in model.family.vae.encoder.parameters())
    with pytest.raises(RuntimeError, match='family.text_encoder was freed'):
        model.family.text_encoder(torch.zeros(1, 77, dtype=torch.long))
    with resident_encoders(model):
        assert released_encoders(model) == ['family.vae.encoder']
    assert released_encoders(model) == FREED  # freed again after the block
    assert np.array_equal(generate(model), before)
    assert model.encoder_fingerprint() == fingerprint


def test_training_from_the_cache_frees_the_encoders(tiny_family, tmp_path_factory):
    """A real Runner from the cache: the encoders are freed before the first
    step, validation generates with them loaded back, and they are freed
    again afterwards; the losses are those of the uncached run."""
    root = tmp_path_factory.mktemp('resident')
    shutil.copytree(f'{REPO}/data/mini_dataset', root / 'data')
    options = {
        'train_dataloader.dataset.ann_file': str(root / 'data/data.json'),
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
        'default_hooks.checkpoint.interval': 100,
    }
    cfg = load_tiny_config(tiny_family, root / 'work_dir', **options)
    build_embedding_cache(cfg, str(root / 'cache'), batch_size=5)
    cfg = load_tiny_config(
        tiny_family,
        root / 'work_dir',
        **options,
        **{'train_dataloader.dataset.embedding_cache': str(root / 'cache')},
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert released_encoders(runner.model) == FREED
    (scalars,) = (root / 'work_dir').glob('*/vis_data/scalars.json')
    lines = [json.loads(line) for line in scalars.read_text().splitlines()]
    assert runner.iter == 5  # every step of the epoch trained from the cache
    losses = [line['loss'] for line in lines if 'loss' in line]
    assert losses and all(0 < loss < 10 for loss in losses)
    (metrics,) = [line for line in lines if 'ipa/clip_i' in line]
    assert 0 < metrics['ipa/clip_i'] <= 1  # validation generated and scored
