"""Skip updates of a non-finite loss; stop after too many in a row."""

import logging

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ...errors import TrainingError, UserError
from ...registry import HOOKS
from ...work_dir import read_pointer
from .atomic_checkpoint_hook import STREAK_INFO

__all__ = ['NonFiniteLossGuardHook']


@HOOKS.register_module()
class NonFiniteLossGuardHook(Hook):
    """Guard the weights against NaN/Inf losses.

    Before training it wraps the optim wrapper's ``update_params``: a step
    whose loss is not finite (on any rank) is skipped (no backward, no
    optimizer step) and logged, so the weights never take a NaN update. With
    fp16 (MMEngine's ``AmpOptimWrapper``) the loss scaler besides skips steps
    whose *gradients* overflow and lowers the scale. After
    ``max_consecutive`` non-finite losses in a row the run stops with one
    line naming the last good checkpoint and how to go on.

    A good checkpoint has finite weights *and* was written before the streak
    of non-finite losses began: no checkpoint is written with NaN/Inf
    weights, nor while a streak lasts (:class:`AtomicCheckpointHook` skips
    it), so a diverged one (weights of ~1e30, finite) never replaces the last
    good one. Resuming from it with a lower ``optim_wrapper.optimizer.lr``
    trains at that rate (:class:`ResumeCheckHook`).

    Args:
        max_consecutive: Non-finite losses in a row that stop the run.
    """

    priority = 'VERY_HIGH'  # check weights before any hook adds to a save

    def __init__(self, max_consecutive: int = 5) -> None:
        self.max_consecutive = max_consecutive
        self.consecutive = 0

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        update = wrapper.update_params

        def guarded_update(loss: torch.Tensor, *args, **kwargs) -> None:
            finite = torch.isfinite(loss.detach()).all().float().reshape(1)
            all_reduce(finite, op='min')  # every rank skips, or none
            if finite.item():
                self._set_streak(runner, 0)
                return update(loss, *args, **kwargs)
            self._set_streak(runner, self.consecutive + 1)
            wrapper.zero_grad()
            print_log(
                f'iteration {runner.iter + 1}: loss is {loss.item()}; '
                f'update skipped ({self.consecutive} in a row, the run '
                f'stops at {self.max_consecutive})',
                logger='current',
                level=logging.WARNING,
            )
            if self.consecutive >= self.max_consecutive:
                raise TrainingError(self._stop_message(runner))

        wrapper.update_params = guarded_update

    def _set_streak(self, runner, count: int) -> None:
        self.consecutive = count
        runner.message_hub.update_info(STREAK_INFO, count)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = [
            name
            for name, value in checkpoint['state_dict'].items()
            if value.is_floating_point() and not value.isfinite().all()
        ]
        if bad:
            raise TrainingError(
                f'the weights hold NaN/Inf ({bad[0]}, {len(bad)} tensors), '
                'so no checkpoint was written; ' + self._advice(runner)
            )

    def _stop_message(self, runner) -> str:
        return (
            f'training stopped at iteration {runner.iter + 1}: the loss '
            f'was not finite {self.max_consecutive} times in a row; '
            + self._advice(runner)
        )

    @staticmethod
    def _advice(runner) -> str:
        try:
            last = read_pointer(runner.work_dir)
        except UserError:
            last = None
        if last is None:
            return (
                'no checkpoint was written yet. Lower the learning rate '
                '(optim_wrapper.optimizer.lr), train in bf16 rather than '
                'fp16, or check the data, then train again'
            )
        return (
            f'the last good checkpoint is {last}. Lower the learning '
            'rate (--cfg-options optim_wrapper.optimizer.lr=...), train '
            'in bf16 rather than fp16, or check the data, then --resume '
            f'{last}'
        )
