"""Records with several references: the embedding cache holds every one,
and a sample reads the one uncached training would draw."""

import pytest
import torch
from mmengine.dataset import default_collate

from diffengine_ipa.apis import build_embedding_cache
from diffengine_ipa.datasets import IPAdapterDataset
from diffengine_ipa.models import IPAdapter

from ..conftest import load_tiny_config
from .test_paired_references import BLUE, GREEN, RED, paired_folder


def test_cache_keeps_every_reference_and_draws_as_uncached(tiny_family, tmp_path):
    ann_file = paired_folder(tmp_path, [BLUE, GREEN, RED])
    cfg = load_tiny_config(
        tiny_family,
        tmp_path / 'work_dir',
        **{'train_dataloader.dataset.ann_file': ann_file},
    )
    summary = build_embedding_cache(cfg, str(tmp_path / 'cache'), batch_size=2)
    assert summary['written'] == 2
    pipeline = cfg.train_dataloader.dataset.pipeline
    plain = IPAdapterDataset(ann_file=ann_file, pipeline=pipeline)
    fast = IPAdapterDataset(
        ann_file=ann_file, pipeline=pipeline, embedding_cache=str(tmp_path / 'cache')
    )
    model = IPAdapter(
        tiny_family['base'],
        tiny_family['image_encoder'],
        text_drop_rate=0,
        image_drop_rate=0,
        both_drop_rate=0,
    )
    seen = set()
    for epoch in range(4):
        losses, features = [], []
        for dataset in (plain, fast):
            dataset.set_draw_epoch(0, epoch)
            batch = model.data_preprocessor(
                default_collate([dataset[0], dataset[1]]), True
            )
            torch.manual_seed(epoch)
            with torch.no_grad():
                losses.append(model(**batch)['loss'].item())
                features.append(
                    model.image_features(
                        batch['inputs'], torch.zeros(2, dtype=torch.bool)
                    )
                )
        assert losses[0] == pytest.approx(losses[1], abs=1e-5)
        assert torch.allclose(features[0], features[1], atol=1e-5)
        seen.update((i, tuple(features[1][i].flatten()[:4].tolist())) for i in range(2))
    assert len(seen) > 2  # other references were drawn in other epochs
    entry = fast.embedding_cache.load(fast.get_data_info(0), 2)
    assert 'image_features_1' not in entry['inputs']
