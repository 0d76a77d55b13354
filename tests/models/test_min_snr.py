"""Min-SNR-γ loss weights: diffusers' formula, for ε and v prediction."""

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from diffengine_ipa.errors import UserError
from diffengine_ipa.models.families.sd15 import SD15_SCHEDULER
from diffengine_ipa.models.objectives import NoisePrediction, RectifiedFlow

TIMESTEPS = torch.tensor([0, 1, 10, 100, 250, 500, 750, 999])


def diffusers_weights(scheduler, timesteps, gamma):
    """As diffusers' examples/text_to_image/train_text_to_image.py."""
    snr = compute_snr(scheduler, timesteps)
    weights = torch.stack([snr, gamma * torch.ones_like(timesteps)], dim=1).min(dim=1)[
        0
    ]
    if scheduler.config.prediction_type == 'epsilon':
        return weights / snr
    return weights / (snr + 1)


@pytest.mark.parametrize('prediction_type', ['epsilon', 'v_prediction'])
def test_weights_equal_diffusers_formula(prediction_type):
    config = dict(SD15_SCHEDULER, prediction_type=prediction_type)
    objective = NoisePrediction(config, snr_gamma=5.0)
    expected = diffusers_weights(DDPMScheduler.from_config(config), TIMESTEPS, 5.0)
    assert torch.allclose(objective.snr_weights(TIMESTEPS), expected.float())

    generator = torch.Generator().manual_seed(0)
    latents, noise, prediction = (
        torch.randn(8, 4, 8, 8, generator=generator) for _ in range(3)
    )
    noisy = objective.add_noise(latents, noise, TIMESTEPS)
    target = (
        objective.scheduler.get_velocity(latents, noise, TIMESTEPS)
        if prediction_type == 'v_prediction'
        else noise
    )
    per_sample = F.mse_loss(prediction, target, reduction='none').mean(dim=[1, 2, 3])
    assert torch.allclose(
        objective.loss(prediction, latents, noise, noisy, TIMESTEPS),
        (per_sample * expected).mean(),
    )
    plain = NoisePrediction(config)
    assert torch.allclose(
        plain.loss(prediction, latents, noise, noisy, TIMESTEPS), per_sample.mean()
    )


def test_bad_gamma_is_one_line():
    with pytest.raises(UserError, match='snr_gamma=0'):
        NoisePrediction(SD15_SCHEDULER, snr_gamma=0)
    with pytest.raises(UserError, match='flow families weight timesteps'):
        RectifiedFlow({}, snr_gamma=5.0)
