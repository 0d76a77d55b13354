"""Per-sample draws: a sample's numbers depend on it, not on its batch."""

import torch
from mmengine.logging import MessageHub

from diffengine_ipa.models.families.sd15 import SD15_SCHEDULER
from diffengine_ipa.models.objectives import NoisePrediction
from diffengine_ipa.models.training_draws import draw_training_randomness

SHAPE = (4, 8, 8)
TIMESTEP = NoisePrediction(SD15_SCHEDULER).sample_timestep


def draws(indices, epoch=0, seed=0):
    torch.manual_seed(seed)
    MessageHub.get_current_instance().update_info('epoch', epoch)
    return draw_training_randomness(
        (len(indices), *SHAPE), TIMESTEP, indices, torch.device('cpu'), with_offset=True
    )


def test_a_sample_draws_the_same_in_any_batch():
    together = draws([3, 7, 11])
    alone = draws([7])
    for name in ('drop', 'timesteps', 'latent_eps', 'noise', 'offset'):
        assert torch.equal(getattr(together, name)[1], getattr(alone, name)[0])
    assert together.noise.shape == (3, *SHAPE)
    assert together.offset.shape == (3, 4, 1, 1)
    assert not torch.equal(together.noise[0], together.noise[1])


def test_epoch_and_seed_change_the_draws():
    first = draws([5])
    assert not torch.equal(first.noise, draws([5], epoch=1).noise)
    assert not torch.equal(first.noise, draws([5], seed=1).noise)
    assert torch.equal(first.noise, draws([5]).noise)
    MessageHub.get_current_instance().update_info('epoch', 0)


def test_without_indices_the_global_generator_draws():
    torch.manual_seed(0)
    a = draw_training_randomness((2, *SHAPE), TIMESTEP, None, torch.device('cpu'))
    torch.manual_seed(0)
    b = draw_training_randomness((2, *SHAPE), TIMESTEP, None, torch.device('cpu'))
    assert torch.equal(a.noise, b.noise) and a.offset is None
    assert 0 <= int(a.timesteps.min()) and int(a.timesteps.max()) < 1000
