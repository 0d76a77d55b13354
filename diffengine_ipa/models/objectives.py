"""Training objectives: what the denoiser is asked to predict, and how hard.

* :class:`NoisePrediction` (SD1.5, SDXL): DDPM noising with the base model's
  beta schedule; the target is the noise (ε) or the velocity (v), by the
  scheduler's ``prediction_type``; MSE, optionally weighted per sample by
  min-SNR-γ (Hang et al. 2023, arXiv 2303.09556), as diffusers'
  ``train_text_to_image.py --snr_gamma``.
* :class:`RectifiedFlow` (SD3, FLUX.1): ``x_t = (1 - σ) x_0 + σ ε``, the
  target ``ε - x_0``, timesteps drawn by diffusers'
  ``compute_density_for_timestep_sampling`` from the scheduler's (shifted)
  sigmas and the loss weighted by ``compute_loss_weighting_for_sd3``, as in
  diffusers' ``train_dreambooth_sd3.py`` and ``train_dreambooth_flux.py``.

Timesteps are drawn one sample at a time from that sample's own generator
(see :mod:`.training_draws`), so a sample's draw does not depend on its batch.
"""

import torch
import torch.nn.functional as F

from ..errors import UserError

__all__ = ['NoisePrediction', 'RectifiedFlow']


class NoisePrediction:
    """ε- or v-prediction on a DDPM schedule.

    Args:
        scheduler_config: The base model's scheduler config; its betas and
            ``prediction_type`` decide the noising and the target.
        snr_gamma: Weight each sample's loss by ``min(SNR(t), γ) / SNR(t)``
            (ε) or ``min(SNR(t), γ) / (SNR(t) + 1)`` (v), SNR from diffusers'
            ``compute_snr``; 5.0 is the paper's. ``None``: plain MSE.
    """

    def __init__(self, scheduler_config: dict, snr_gamma: float | None = None) -> None:
        from diffusers import DDPMScheduler

        if snr_gamma is not None and not snr_gamma > 0:
            raise UserError(
                f'objective snr_gamma={snr_gamma}: must be > 0 '
                "(5.0 is the paper's), or None for plain MSE"
            )
        self.scheduler = DDPMScheduler.from_config(scheduler_config)
        self.snr_gamma = snr_gamma

    def snr_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        """(B, ) min-SNR-γ loss weights of ``timesteps``."""
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.scheduler, timesteps).float()
        clipped = snr.clamp(max=self.snr_gamma)
        if self.scheduler.config.prediction_type == 'v_prediction':
            return clipped / (snr + 1)
        return clipped / snr

    def sample_timestep(
        self, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """One integer timestep in [0, num_train_timesteps)."""
        steps = self.scheduler.config.num_train_timesteps
        return torch.randint(0, steps, (), generator=generator, device=device)

    def add_noise(
        self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        return self.scheduler.add_noise(latents, noise, timesteps)

    def loss(
        self,
        prediction: torch.Tensor,
        latents: torch.Tensor,
        noise: torch.Tensor,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
    ) -> torch.Tensor:
        """MSE against the noise or, for v-prediction, the velocity."""
        if self.scheduler.config.prediction_type == 'v_prediction':
            target = self.scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        if self.snr_gamma is None:
            return F.mse_loss(prediction.float(), target.float())
        per_sample = (
            F.mse_loss(prediction.float(), target.float(), reduction='none')
            .flatten(1)
            .mean(1)
        )  # (B, )
        return (per_sample * self.snr_weights(timesteps)).mean()


class RectifiedFlow:
    """Flow matching along straight paths, as diffusers trains SD3 and FLUX.1.

    Args:
        scheduler_config: A ``FlowMatchEulerDiscreteScheduler`` config; its
            sigmas (shifted by ``shift``, unless the model shifts dynamically
            by resolution, as FLUX.1 does) are the training noise levels.
        weighting_scheme: ``'logit_normal'``, ``'mode'``, ``'sigma_sqrt'``,
            ``'cosmap'`` or ``'none'`` (uniform), diffusers' names.
        logit_mean: Mean of the logit-normal timestep density.
        logit_std: Its standard deviation.
        mode_scale: Scale of the ``'mode'`` density.
        precondition_outputs: Turn the prediction into an estimate of the
            clean latents (``x_t - σ · v``) and compare it with them, as
            ``train_dreambooth_sd3.py`` does by default.
    """

    SCHEMES = ('logit_normal', 'mode', 'sigma_sqrt', 'cosmap', 'none')

    def __init__(
        self,
        scheduler_config: dict,
        weighting_scheme: str = 'none',
        logit_mean: float = 0.0,
        logit_std: float = 1.0,
        mode_scale: float = 1.29,
        precondition_outputs: bool = False,
        snr_gamma: float | None = None,
    ) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        if snr_gamma is not None:
            raise UserError(
                'model.family.objective.snr_gamma: min-SNR-γ weights the ε/v '
                'objective of SD1.5 and SDXL; flow families weight timesteps '
                "by weighting_scheme ('logit_normal', 'mode', ...) instead"
            )
        if weighting_scheme not in self.SCHEMES:
            raise UserError(
                f'model.family.objective.weighting_scheme: '
                f'{weighting_scheme!r} is not one of {self.SCHEMES}'
            )
        self.scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
        self.weighting_scheme = weighting_scheme
        self.density = dict(
            logit_mean=logit_mean, logit_std=logit_std, mode_scale=mode_scale
        )
        self.precondition_outputs = precondition_outputs

    def sample_timestep(
        self, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """One timestep (σ · 1000) of the scheduler's, drawn by the density."""
        from diffusers.training_utils import compute_density_for_timestep_sampling

        u = compute_density_for_timestep_sampling(
            self.weighting_scheme, 1, device=device, generator=generator, **self.density
        )
        index = (u * self.scheduler.config.num_train_timesteps).long()
        return self.scheduler.timesteps.to(device)[index][0]

    def sigmas(self, timesteps: torch.Tensor, ndim: int) -> torch.Tensor:
        """σ of each timestep, shaped (B, 1, ...) to broadcast over latents."""
        schedule = self.scheduler.timesteps.to(timesteps.device)
        index = (schedule[None, :] == timesteps[:, None]).float().argmax(1)
        sigma = self.scheduler.sigmas.to(timesteps.device)[index]
        return sigma.view(-1, *([1] * (ndim - 1)))

    def add_noise(
        self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        sigmas = self.sigmas(timesteps, latents.ndim).to(latents.dtype)
        return (1.0 - sigmas) * latents + sigmas * noise

    def loss(
        self,
        prediction: torch.Tensor,
        latents: torch.Tensor,
        noise: torch.Tensor,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
    ) -> torch.Tensor:
        """The weighted flow-matching MSE, per sample, then averaged."""
        from diffusers.training_utils import compute_loss_weighting_for_sd3

        sigmas = self.sigmas(timesteps, latents.ndim)
        if self.precondition_outputs:
            prediction = prediction * (-sigmas) + noisy
            target = latents
        else:
            target = noise - latents
        weighting = compute_loss_weighting_for_sd3(self.weighting_scheme, sigmas)
        error = weighting.float() * (prediction.float() - target.float()) ** 2
        return error.reshape(target.shape[0], -1).mean(1).mean()
