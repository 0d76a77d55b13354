"""The random numbers of one training step, drawn per sample.

Each sample's draws (condition drop, timestep, latent sample, noise) come
from its own generator, seeded by the run's seed, the epoch and the sample's
index in the dataset (:mod:`diffengine_ipa.sample_generators`; the data
pipeline's random crop and flip draw from the same key, in another stream).
A sample therefore gets the same numbers whichever batch, gradient-
accumulation step or data-parallel rank it lands on: N accumulated steps at
batch B, or N ranks at batch B, equal one step at batch N·B, and a resumed
run draws what an uninterrupted one would.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from mmengine.logging import MessageHub

from ..sample_generators import sample_generator

__all__ = [
    'TrainingDraws',
    'draw_training_randomness',
    'draw_fixed_randomness',
    'sample_generator',
]


@dataclass
class TrainingDraws:
    """Per-sample draws, batched along the first dimension."""

    drop: torch.Tensor  # (B, ) uniform in [0, 1): which condition to drop
    timesteps: torch.Tensor  # (B, ) the objective's timesteps
    latent_eps: torch.Tensor  # (B, C, h, w): the VAE latent sample
    noise: torch.Tensor  # (B, C, h, w)
    offset: torch.Tensor | None  # (B, C, 1, 1) offset noise, if asked for


def _current_epoch() -> int:
    """The training epoch mmengine's RuntimeInfoHook publishes (0 outside a
    runner)."""
    return int(MessageHub.get_current_instance().get_info('epoch', 0) or 0)


TimestepSampler = Callable[[torch.Generator | None, torch.device], torch.Tensor]


def draw_training_randomness(
    latent_shape: Sequence[int],
    sample_timestep: TimestepSampler,
    sample_indices: Sequence[int] | None,
    device: torch.device,
    with_offset: bool = False,
) -> TrainingDraws:
    """Draw a step's random numbers for samples of ``latent_shape`` (B, C,
    h, w).

    Args:
        sample_timestep: The objective's draw of one timestep from a
            generator (``None``: the global one).
        sample_indices: The samples' dataset indices; ``None`` (samples of
            unknown origin) draws from the global generator instead.
    """
    batch, *shape = latent_shape
    if sample_indices is None:
        return TrainingDraws(
            drop=torch.rand(batch, device=device),
            timesteps=torch.stack(
                [sample_timestep(None, device) for _ in range(batch)]
            ),
            latent_eps=torch.randn(latent_shape, device=device),
            noise=torch.randn(latent_shape, device=device),
            offset=(
                torch.randn((batch, shape[0], 1, 1), device=device)
                if with_offset
                else None
            ),
        )
    if len(sample_indices) != batch:
        raise ValueError(f'{len(sample_indices)} sample indices for a batch of {batch}')
    seed, epoch = torch.initial_seed(), _current_epoch()
    return _draw_per_sample(
        [sample_generator(seed, epoch, int(index), device) for index in sample_indices],
        shape,
        sample_timestep,
        device,
        with_offset,
    )


def draw_fixed_randomness(
    latent_shape: Sequence[int],
    sample_timestep: TimestepSampler,
    seed: int,
    device: torch.device,
) -> TrainingDraws:
    """Draws that are the same on every call: sample ``i`` of the batch gets
    the generator of (``seed``, epoch 0, index ``i``) in a stream of its own,
    whatever the run's seed, epoch or global random state (which stays
    untouched). For measurements repeated over training, such as
    ``ReferenceGainHook``'s."""
    batch, *shape = latent_shape
    return _draw_per_sample(
        [
            sample_generator(seed, 0, i, device, stream='fixed_draws')
            for i in range(batch)
        ],
        shape,
        sample_timestep,
        device,
        False,
    )


def _draw_per_sample(
    generators: list[torch.Generator],
    shape: list[int],
    sample_timestep: TimestepSampler,
    device: torch.device,
    with_offset: bool,
) -> TrainingDraws:
    """One sample's draws from each generator, in the order training has
    always drawn them, stacked into a batch."""
    draws = []
    for g in generators:
        draws.append(
            (
                torch.rand((), generator=g, device=device),
                sample_timestep(g, device),
                torch.randn(shape, generator=g, device=device),
                torch.randn(shape, generator=g, device=device),
                torch.randn((shape[0], 1, 1), generator=g, device=device)
                if with_offset
                else None,
            )
        )
    drop, timesteps, latent_eps, noise, offset = zip(*draws, strict=True)
    return TrainingDraws(
        drop=torch.stack(drop),
        timesteps=torch.stack(timesteps),
        latent_eps=torch.stack(latent_eps),
        noise=torch.stack(noise),
        offset=torch.stack(offset) if with_offset else None,
    )
