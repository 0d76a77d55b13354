"""The training objectives equal the formulas of diffusers' training scripts."""

import math

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from diffengine_ipa.models.families.flux import FLUX_SCHEDULER
from diffengine_ipa.models.families.sd3 import SD3_SCHEDULER
from diffengine_ipa.models.families.sd15 import SD15_SCHEDULER
from diffengine_ipa.models.objectives import NoisePrediction, RectifiedFlow


def script_sigmas(scheduler, timesteps, n_dim):
    """``get_sigmas`` of train_dreambooth_sd3.py / train_dreambooth_flux.py."""
    sigmas = scheduler.sigmas
    schedule_timesteps = scheduler.timesteps
    step_indices = [(schedule_timesteps == t).nonzero().item() for t in timesteps]
    sigma = sigmas[step_indices].flatten()
    while len(sigma.shape) < n_dim:
        sigma = sigma.unsqueeze(-1)
    return sigma


def script_step(scheduler, scheme, precondition, latents, noise, prediction, seeds):
    """The scripts' timestep draw, noising and loss, one generator a sample
    (as our per-sample draws use them)."""
    from diffusers.training_utils import (
        compute_density_for_timestep_sampling,
        compute_loss_weighting_for_sd3,
    )

    u = torch.cat(
        [
            compute_density_for_timestep_sampling(
                scheme,
                1,
                logit_mean=0.0,
                logit_std=1.0,
                mode_scale=1.29,
                generator=torch.Generator().manual_seed(seed),
            )
            for seed in seeds
        ]
    )
    indices = (u * scheduler.config.num_train_timesteps).long()
    timesteps = scheduler.timesteps[indices]
    sigmas = script_sigmas(scheduler, timesteps, latents.ndim)
    noisy = (1.0 - sigmas) * latents + sigmas * noise
    model_pred = prediction
    if precondition:
        model_pred = model_pred * (-sigmas) + noisy
        target = latents
    else:
        target = noise - latents
    weighting = compute_loss_weighting_for_sd3(scheme, sigmas=sigmas)
    loss = torch.mean(
        (weighting.float() * (model_pred.float() - target.float()) ** 2).reshape(
            target.shape[0], -1
        ),
        1,
    ).mean()
    return timesteps, noisy, loss


@pytest.mark.parametrize(
    'config, scheme, precondition',
    [
        (SD3_SCHEDULER, 'logit_normal', True),  # SD3's defaults
        (FLUX_SCHEDULER, 'none', False),  # FLUX's defaults
        (SD3_SCHEDULER, 'sigma_sqrt', False),
        (FLUX_SCHEDULER, 'cosmap', True),
        (SD3_SCHEDULER, 'mode', False),
    ],
)
def test_rectified_flow_equals_the_training_scripts(config, scheme, precondition):
    objective = RectifiedFlow(
        config, weighting_scheme=scheme, precondition_outputs=precondition
    )
    reference = FlowMatchEulerDiscreteScheduler.from_config(config)
    torch.manual_seed(0)
    latents, noise, prediction = torch.randn(3, 4, 4, 8, 8).unbind(0)
    seeds = (11, 12, 13, 14)
    timesteps = torch.stack(
        [
            objective.sample_timestep(
                torch.Generator().manual_seed(seed), torch.device('cpu')
            )
            for seed in seeds
        ]
    )
    noisy = objective.add_noise(latents, noise, timesteps)
    loss = objective.loss(prediction, latents, noise, noisy, timesteps)
    expected = script_step(
        reference, scheme, precondition, latents, noise, prediction, seeds
    )
    assert torch.equal(timesteps, expected[0])
    assert torch.allclose(noisy, expected[1], atol=1e-6)
    assert loss.item() == pytest.approx(expected[2].item(), rel=1e-6)


def test_sd3_sigmas_are_shifted_and_flux_sigmas_are_not():
    """SD3 trains on σ' = 3σ / (1 + 2σ) of the grid σ = t / 1000; FLUX.1-dev
    shifts by resolution at inference only, so it trains on the plain grid."""
    grid = torch.arange(1000, 0, -1) / 1000  # 1.0, 0.999, ..., 0.001
    sd3, flux = RectifiedFlow(SD3_SCHEDULER), RectifiedFlow(FLUX_SCHEDULER)
    assert torch.allclose(
        sd3.sigmas(sd3.scheduler.timesteps, 1), 3 * grid / (1 + 2 * grid)
    )
    assert torch.allclose(flux.sigmas(flux.scheduler.timesteps, 1), grid)
    assert torch.allclose(
        sd3.scheduler.timesteps, 1000 * sd3.sigmas(sd3.scheduler.timesteps, 1)
    )


def test_logit_normal_draws_concentrate_in_the_middle():
    objective = RectifiedFlow(SD3_SCHEDULER, weighting_scheme='logit_normal')
    sigmas = torch.stack(
        [
            objective.sigmas(
                objective.sample_timestep(
                    torch.Generator().manual_seed(i), torch.device('cpu')
                )[None],
                1,
            )[0]
            for i in range(400)
        ]
    )
    middle = ((sigmas > 0.25) & (sigmas < 0.95)).float().mean()
    assert middle > 0.6  # shifted logit-normal: most mass at mid-high noise


@pytest.mark.parametrize('prediction_type', ['epsilon', 'v_prediction'])
def test_noise_prediction_targets(prediction_type):
    objective = NoisePrediction(dict(SD15_SCHEDULER, prediction_type=prediction_type))
    torch.manual_seed(0)
    latents, noise, prediction = torch.randn(3, 2, 4, 8, 8).unbind(0)
    timesteps = torch.tensor([10, 900])
    noisy = objective.add_noise(latents, noise, timesteps)
    alphas = objective.scheduler.alphas_cumprod[timesteps].view(-1, 1, 1, 1)
    assert torch.allclose(
        noisy, alphas.sqrt() * latents + (1 - alphas).sqrt() * noise, atol=1e-6
    )
    target = (
        noise
        if prediction_type == 'epsilon'
        else alphas.sqrt() * noise - (1 - alphas).sqrt() * latents
    )
    loss = objective.loss(prediction, latents, noise, noisy, timesteps)
    assert loss.item() == pytest.approx(
        torch.mean((prediction - target) ** 2).item(), rel=1e-5
    )


def test_an_unknown_weighting_is_one_line():
    from diffengine_ipa.errors import UserError

    with pytest.raises(UserError, match="'sqrt' is not one of"):
        RectifiedFlow(SD3_SCHEDULER, weighting_scheme='sqrt')
    assert math.isfinite(
        RectifiedFlow(SD3_SCHEDULER).sigmas(torch.tensor([1000.0]), 1).item()
    )
