"""Check what ``--resume`` and ``load_from`` hand the runner; never resume
silently into something else."""

import logging
from typing import Any

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ...errors import CheckpointError
from ...official_format import (
    adapter_weights,
    compare_adapter,
    describe_official,
    to_official,
    validate_official,
)
from ...registry import HOOKS

__all__ = ['ResumeCheckHook']


def _base_lrs(optim_wrapper: Any) -> list[float] | None:
    """The configured learning rate of each parameter group (before any
    schedule), or ``None`` for several optimizers."""
    groups = getattr(optim_wrapper, 'param_groups', None)
    if not isinstance(groups, list):
        return None
    return [float(g.get('initial_lr', g['lr'])) for g in groups]


def _batch_size(dataloader: Any) -> int | None:
    size = getattr(dataloader, 'batch_size', None)
    sampler = getattr(dataloader, 'batch_sampler', None)
    return size if size is not None else getattr(sampler, 'batch_size', None)


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """One guard for every checkpoint a run loads.

    Each checkpoint records the run's settings that decide what a resume
    means (``meta['run']``: learning rates, batch size, processes, dataset
    size). On ``--resume`` and ``load_from`` the file is read as every adapter
    file is (:mod:`diffengine_ipa.official_format`): non-finite or malformed
    weights, or an adapter of another family, image encoder or variant, stop
    with one line. On ``--resume``:

    * a different learning rate in the config is *followed* (the schedule's
      position is kept), so lowering ``optim_wrapper.optimizer.lr`` after a
      diverged run takes effect;
    * a different number of samples per iteration (batch size × processes)
      or dataset size stops with one line: resuming by iteration count would
      skip or repeat data;
    * an adapter file that is not a training checkpoint stops with one line.

    ``load_from`` also takes an official adapter file (its weights only).
    """

    priority = 'HIGH'  # before AdapterCheckpointHook makes the save plain

    def __init__(self) -> None:
        self.run: dict[str, Any] = {}
        self._lr_change: tuple[list, list] | None = None

    def before_run(self, runner) -> None:
        loop = getattr(runner, '_train_loop', None)  # built only by train()
        dataloader = (
            None if isinstance(loop, dict) else getattr(loop, 'dataloader', None)
        )
        batch = _batch_size(dataloader)
        self.run = dict(
            lr=_base_lrs(runner.optim_wrapper),
            batch_size=batch,
            processes=runner.world_size,
            samples_per_iteration=None if batch is None else batch * runner.world_size,
            dataset_size=len(dataloader.dataset) if dataloader is not None else None,
        )

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['run'] = dict(self.run)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        source = str(getattr(runner, '_load_from', None) or 'the checkpoint')
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = to_official(checkpoint, source)
        validate_official(state, source)
        compare_adapter(describe_official(state), model.expected_adapter(), source)
        ours = 'state_dict' in checkpoint and isinstance(checkpoint.get('meta'), dict)
        if not hasattr(runner, 'strategy'):  # FSDP/DeepSpeed hold their own
            checkpoint['state_dict'] = adapter_weights(model, state, source)
        if getattr(runner, '_resume', False):
            if not ours or 'iter' not in checkpoint['meta']:
                raise CheckpointError(
                    f'{source}: an adapter file, not a training checkpoint; '
                    '--resume needs a checkpoint a training wrote '
                    '(iter_N.pth). To start from its weights, use '
                    'model.pretrained_ip_adapter or load_from'
                )
            self._check_run(checkpoint['meta'].get('run'), source)

    def _check_run(self, saved: dict | None, source: str) -> None:
        """Refuse what resuming cannot honour; note what it follows."""
        if not saved:
            return  # written before runs recorded their settings
        now = self.run
        if saved.get('samples_per_iteration') != now['samples_per_iteration']:
            raise CheckpointError(
                f'{source}: trained at {saved["samples_per_iteration"]} '
                f'samples per iteration (batch_size {saved["batch_size"]} × '
                f'{saved["processes"]} processes); this run takes '
                f'{now["samples_per_iteration"]} (batch_size '
                f'{now["batch_size"]} × {now["processes"]} processes), so '
                'resuming at its iteration would skip data. Resume with the '
                'same batch size and processes, or start a new run from its '
                'weights with load_from'
            )
        if saved.get('dataset_size') != now['dataset_size']:
            raise CheckpointError(
                f'{source}: trained on {saved["dataset_size"]} samples, this '
                f'run has {now["dataset_size"]}: the epoch it stopped in is '
                'another one now. Resume with the same data, or start a new '
                'run from its weights with load_from'
            )
        if saved.get('lr') and now['lr'] and saved['lr'] != now['lr']:
            self._lr_change = (saved['lr'], now['lr'])

    def before_train(self, runner) -> None:
        if self._lr_change is None:
            return
        saved, now = self._lr_change
        self._lr_change = None
        wrapper = runner.optim_wrapper
        for group, old, new in zip(wrapper.param_groups, saved, now, strict=False):
            group['lr'] = new * (group['lr'] / old if old else 1.0)
            if 'initial_lr' in group:
                group['initial_lr'] = new
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        for scheduler in schedulers:
            if getattr(scheduler, 'param_name', None) == 'lr':
                scheduler.base_values = list(now)
                scheduler._last_value = [g['lr'] for g in wrapper.param_groups]
        print_log(
            f"resumed with the config's learning rate {now} (the "
            f'checkpoint was trained at {saved}); the schedule goes on '
            'from where it stopped',
            logger='current',
            level=logging.WARNING,
        )
