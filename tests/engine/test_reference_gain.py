"""ReferenceGainHook: the held-out loss with true, shuffled and no
references, logged at each validation; zero where the adapter cannot see
its reference; a warning after ``patience`` validations without gain; the
training random stream untouched."""

import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from diffengine_ipa.engine.hooks import ReferenceGainHook
from diffengine_ipa.engine.hooks.reference_gain_hook import (
    UNUSED_REFERENCE,
    held_out_batch,
)

from ..conftest import (
    TINY_CONFIGS,
    build_tiny_model,
    family_of,
    load_tiny_config,
)


def zero_projection(model) -> None:
    """Image tokens that do not depend on the image: the projection's
    weights zeroed (its output is then its norm's bias for every image)."""
    for name, param in model.image_projection.named_parameters():
        if 'norm' not in name:
            param.data.zero_()


def random_adapter(model) -> None:
    """Adapter weights that read the image (FLUX's K/V start at zero)."""
    generator = torch.Generator().manual_seed(0)
    for param in model.parameters():
        if param.requires_grad:
            param.data = 0.5 * torch.randn(param.shape, generator=generator)


def batch_of(model, cfg, count: int = 4) -> dict:
    batch, size, _ = held_out_batch(cfg, count)
    assert size == min(count, 5)
    return model.data_preprocessor(batch, False)['inputs']


def gains(losses: dict) -> tuple[float, float]:
    true = losses['true'].item()
    return (
        (losses['shuffled'].item() - true) / true,
        (losses['none'].item() - true) / true,
    )


@pytest.mark.parametrize('variant', sorted(TINY_CONFIGS))
def test_gain_is_zero_exactly_when_the_image_cannot_matter(
    tiny_families, tmp_path, variant
):
    init_default_scope('diffengine_ipa')
    model = build_tiny_model(tiny_families, variant).eval()
    random_adapter(model)
    cfg = load_tiny_config(
        tiny_families[family_of(variant)], tmp_path, TINY_CONFIGS[variant]
    )
    inputs = batch_of(model, cfg)
    state = torch.get_rng_state()
    first = model.reference_losses(inputs, seed=0)
    assert torch.equal(state, torch.get_rng_state())  # no global draw
    again = model.reference_losses(inputs, seed=0)
    assert all(torch.equal(first[k], again[k]) for k in first)  # fixed draws
    shuffled, none = gains(first)
    assert abs(shuffled) > 1e-6 and abs(none) > 1e-6  # a random adapter
    zero_projection(model)
    shuffled, none = gains(model.reference_losses(inputs, seed=0))
    assert abs(shuffled) < 1e-6 and abs(none) < 1e-6


def test_shuffle_needs_another_reference(tiny_family, tmp_path):
    """One sample, or identical references: nothing to shuffle, gain 0;
    distinct references: the roll hands each sample another's."""
    init_default_scope('diffengine_ipa')
    model = build_tiny_model({'sd15': tiny_family}, 'sd15').eval()
    random_adapter(model)
    cfg = load_tiny_config(tiny_family, tmp_path)
    inputs = batch_of(model, cfg, 3)
    one = {k: v[:1] for k, v in inputs.items()}
    assert gains(model.reference_losses(one))[0] == 0
    same = dict(
        inputs,
        reference_pixel_values=inputs['reference_pixel_values'][:1].expand(
            3, -1, -1, -1
        ),
    )
    assert gains(model.reference_losses(same))[0] == 0
    assert gains(model.reference_losses(inputs))[0] != 0


class Record(Hook):
    """Per training step: the loss and torch's random state; per
    validation: whether the unused-reference warning was logged yet."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.losses, self.states, self.warned = [], [], []

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ) -> None:
        self.losses.append(outputs['loss'].item())
        self.states.append(torch.get_rng_state())

    def after_val_epoch(self, runner, metrics=None) -> None:
        (log,) = glob.glob(osp.join(runner.log_dir, '*.log'))
        with open(log) as f:
            self.warned.append(f.read().count(UNUSED_REFERENCE))


class ZeroProjection(Hook):
    def before_train(self, runner) -> None:
        zero_projection(runner.model)


def train(tiny_family, work_dir, with_gain: bool) -> tuple[Record, str]:
    """3 epochs of 2 steps, validating after each, learning rate 0 and the
    projection zeroed (so the adapter never sees its reference), without
    RandomStateHook: only the gain hook could shift the random stream."""
    cfg = load_tiny_config(
        tiny_family,
        work_dir,
        **{
            'train_cfg.max_epochs': 3,
            'train_cfg.val_interval': 1,
            'train_dataloader.dataset.indices': 2,
            'val_dataloader.dataset.max_cases': 1,
            'model.generation_cfg.steps': 1,
            'optim_wrapper.optimizer.lr': 0.0,
        },
    )
    cfg.custom_hooks = [
        h
        for h in cfg.custom_hooks
        if h['type'] not in ('RandomStateHook', 'ReferenceGainHook')
    ]
    if with_gain:
        cfg.custom_hooks.append(dict(type='ReferenceGainHook', patience=3))
    runner = Runner.from_cfg(cfg)
    record = Record()
    runner.register_hook(ZeroProjection())
    runner.register_hook(record)
    runner.train()
    return record, runner.log_dir


@pytest.fixture(scope='module')
def runs(tiny_family, tmp_path_factory) -> dict:
    return {
        name: train(tiny_family, tmp_path_factory.mktemp(name), with_gain)
        for name, with_gain in (('with', True), ('without', False))
    }


def test_gains_land_in_scalars_json(runs):
    _, log_dir = runs['with']
    with open(osp.join(log_dir, 'vis_data', 'scalars.json')) as f:
        validations = [r for r in map(json.loads, f) if 'loss' not in r]
    assert len(validations) == 3
    for record in validations:
        assert abs(record['reference_gain']) < 1e-6  # zeroed projection
        assert abs(record['no_reference_gain']) < 1e-6
        assert record['held_out_loss'] > 0


def test_warning_after_patience_validations_not_before(runs):
    record, _ = runs['with']
    assert record.warned == [0, 0, 1]


def test_training_random_stream_is_unchanged(runs):
    (with_gain, _), (without, _) = runs['with'], runs['without']
    assert with_gain.losses == without.losses and len(with_gain.losses) == 6
    assert all(
        torch.equal(a, b) for a, b in zip(with_gain.states, without.states, strict=True)
    )


def test_default_runtime_turns_it_on(tiny_family, tmp_path):
    cfg = load_tiny_config(tiny_family, tmp_path)
    (entry,) = [h for h in cfg.custom_hooks if h['type'] == 'ReferenceGainHook']
    assert (
        ReferenceGainHook(**{k: v for k, v in entry.items() if k != 'type'}).patience
        == 3
    )


def test_from_the_embedding_cache(tiny_family, tmp_path):
    """A run on an embedding cache measures on the cached encodings: the
    same three losses as from the images."""
    from diffengine_ipa.apis import build_embedding_cache

    init_default_scope('diffengine_ipa')
    model = build_tiny_model({'sd15': tiny_family}, 'sd15').eval()
    random_adapter(model)
    cfg = load_tiny_config(tiny_family, tmp_path / 'work_dir')
    build_embedding_cache(cfg, str(tmp_path / 'cache'), batch_size=2)
    cached = load_tiny_config(
        tiny_family,
        tmp_path / 'work_dir',
        **{'train_dataloader.dataset.embedding_cache': str(tmp_path / 'cache')},
    )
    inputs = batch_of(model, cached)
    assert 'image_features' in inputs and 'pixel_values' not in inputs
    ours = model.reference_losses(inputs)
    theirs = model.reference_losses(batch_of(model, cfg))
    for key in ('true', 'shuffled', 'none'):
        assert ours[key].item() == pytest.approx(theirs[key].item(), abs=1e-5)
