"""The shapes bases' pretraining still trains, and what it writes loads in
each family's diffusers pipeline and through the kit's own loaders."""

import os.path as osp

import pytest
import torch

from diffengine_ipa.shapes_world import bases, pretrain, world

WORDS = ('a', *world.HUES, *world.SHAPES)


def test_tokenizers_read_each_world_word_as_its_own_token():
    for tokenizer, strip in (
        (bases.build_clip_tokenizer(), slice(1, -1)),
        (bases.build_t5_tokenizer(), slice(0, -1)),
    ):
        ids = [tokenizer(word).input_ids[strip] for word in WORDS]
        assert all(len(i) == 1 for i in ids), ids
        assert len({i[0] for i in ids}) == len(WORDS)
        assert tokenizer.unk_token_id not in {i[0] for i in ids}


def _falls(losses: list[float]) -> bool:
    third = max(1, len(losses) // 3)
    return sum(losses[-third:]) / third < 0.9 * sum(losses[:third]) / third


@pytest.fixture(scope='module')
def pool() -> pretrain.Pool:
    return pretrain.draw_pool(seed=0, count=96)


def test_vae_and_image_encoder_losses_fall(pool):
    losses = []
    vae = pretrain.train_vae(
        'vae', pool, steps=30, batch_size=16, log=lambda step, loss: losses.append(loss)
    )
    # from the first step's error to a plateau near the mean image's
    assert sum(losses[-10:]) / 10 < 0.85 * losses[0], losses
    assert vae.config.shift_factor == 0.0 and vae.config.scaling_factor > 0
    losses.clear()
    pretrain.train_image_encoder(
        'clip_vision',
        pool,
        steps=12,
        batch_size=32,
        lr=3e-3,
        log=lambda step, loss: losses.append(loss),
    )
    assert _falls(losses), losses


def test_a_denoiser_loss_falls(tmp_path, pool):
    """FLUX (rectified flow) on random VAE and text encoders: the velocity
    loss falls within a few steps."""
    for part in ('vae', 'clip_text', 't5'):
        bases.save_part(bases.build_part(part), part, str(tmp_path))
    components = bases.family_components('flux', str(tmp_path), denoiser=False)
    losses = []
    pretrain.train_denoiser(
        'flux',
        components,
        pool,
        steps=12,
        batch_size=16,
        log=lambda step, loss: losses.append(loss),
    )
    assert _falls(losses), losses


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory) -> str:
    """The CLI, two steps per stage, into a temporary folder."""
    import importlib.util

    out = str(tmp_path_factory.mktemp('bases'))
    path = osp.join(
        osp.dirname(__file__), '..', '..', 'tools', 'pretrain_shapes_bases.py'
    )
    spec = importlib.util.spec_from_file_location('pretrain_cli', path)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    cli.main(['--out', out, '--steps', '2', '--pool', '48', '--eval-per-caption', '0'])
    return out


@pytest.mark.parametrize('family', list(bases.FAMILIES))
def test_installed_base_loads_in_its_pipeline_and_the_kit(tiny_run, family, tmp_path):
    import diffusers

    from diffengine_ipa.registry import MODELS

    (folder,) = bases.install_bases(str(tmp_path), root=tiny_run, families=(family,))
    cls = getattr(diffusers, bases.FAMILIES[family]['pipeline'])
    pipe = cls.from_pretrained(folder)
    for name, part in pipe.components.items():
        if isinstance(part, torch.nn.Module):
            assert part.dtype == torch.float32, name
    encoder_type = 'SiglipImageEncoder' if family == 'sd35' else 'CLIPImageEncoder'
    encoder = MODELS.get(encoder_type)(folder, subfolder='image_encoder')
    assert encoder.image_size == world.DEFAULT_SIZE
    assert encoder.dtype == torch.float32
    pipe.set_progress_bar_config(disable=True)
    result = pretrain.colour_accuracy(
        family, pipe, per_caption=1, num_inference_steps=2
    )
    assert result['images'][0].size == (world.DEFAULT_SIZE,) * 2
