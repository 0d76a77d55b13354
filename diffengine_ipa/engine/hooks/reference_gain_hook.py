"""Is the adapter using its reference? A held-out loss, three ways."""

import contextlib
import copy
import functools
import logging

import numpy as np
import torch
from mmengine.dataset import default_collate
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import FUNCTIONS
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import IterableDataset

from ...registry import DATASETS, HOOKS
from ...run_logs import UNUSED_REFERENCE
from ...user_config import HELD_OUT_SOURCE_KEYS as _SOURCE_KEYS
from ..random_state import preserved_random_state

__all__ = [
    'ReferenceGainHook',
    'UNUSED_REFERENCE',
    'held_out_batch',
    'held_out_dataset_cfg',
]


def held_out_dataset_cfg(cfg) -> tuple[dict, str]:
    """The records the gain is measured on, and where they come from: the
    held-out validation records of training's kind (``val_split`` or
    ``val_ann_file``) when the config has them, else the training set."""
    train = cfg.train_dataloader.dataset
    if train.get('val_split'):
        return (
            dict(copy.deepcopy(train), split='val'),
            f'the val_split={train.val_split} held-out records',
        )
    if cfg.get('val_ann_file'):
        keep = ('pipeline', 'resolution', *_SOURCE_KEYS)
        dataset = dict(
            type='IPAdapterDataset',
            ann_file=cfg.val_ann_file,
            on_bad_record='skip',
            **{
                k: copy.deepcopy(train[k])
                for k in keep
                if k in train and k != 'data_root'
            },
        )
        return dataset, f'the val_ann_file records ({cfg.val_ann_file})'
    return copy.deepcopy(train), (
        'training records (the config has no val_split or val_ann_file)'
    )


def held_out_batch(cfg, num_samples: int) -> tuple[dict | None, int, str]:
    """``(batch, size, source)``: up to ``num_samples`` records of
    :func:`held_out_dataset_cfg`, spread evenly over them, through the
    training pipeline and collate function, as one batch of one size; no
    batch (``None``) for streamed shards, which have no index."""
    dataset_cfg, source = held_out_dataset_cfg(cfg)
    dataset = DATASETS.build(dataset_cfg)
    if isinstance(dataset, IterableDataset):  # streamed shards: no index
        return None, 0, source
    count = len(dataset)
    picks = np.unique(np.linspace(0, count - 1, min(num_samples, count)).round())
    samples = [dataset[int(i)] for i in picks]
    first = _shapes(samples[0])  # aspect buckets: one size per batch
    samples = [s for s in samples if _shapes(s) == first]
    return _collate(cfg)(samples), len(samples), source


def _collate(cfg):
    """The training data loader's collate function."""
    entry = dict(cfg.train_dataloader.get('collate_fn') or dict(type='pseudo_collate'))
    kind = entry.pop('type')
    kind = FUNCTIONS.get(kind) if isinstance(kind, str) else kind
    return functools.partial(kind or default_collate, **entry)


def _shapes(sample: dict) -> tuple:
    return tuple(
        (key, tuple(value.shape))
        for key, value in sorted(sample['inputs'].items())
        if isinstance(value, torch.Tensor)
    )


@HOOKS.register_module()
class ReferenceGainHook(Hook):
    """At each validation, the denoising loss of a fixed held-out batch
    (fixed noise and timesteps) with its true references, with them
    shuffled within the batch, and with none; logs

    - ``val/reference_gain`` = (loss_shuffled − loss_true) / loss_true,
    - ``val/no_reference_gain`` = (loss_none − loss_true) / loss_true,
    - ``val/held_out_loss`` = loss_true,

    to the message hub (so to ``vis_data/scalars.json``, TensorBoard and the
    validation log line), and warns in one line when the reference gain has
    stayed ≤ 0 for ``patience`` validations in a row.

    The batch: ``num_samples`` records spread evenly over the held-out
    validation records (``val_split`` / ``val_ann_file``), else over the
    training records; loaded once, with the training pipeline (its random
    crop and flip drawn once). Its draws come from generators of their own,
    and the random state is restored after, so training draws what it
    would without the hook.

    Args:
        num_samples: Samples in the held-out batch (one batch; ≥ 2 to
            shuffle).
        seed: Keys the batch's noise and timesteps.
        patience: Validations in a row with a gain ≤ 0 before the warning.
    """

    priority = 'NORMAL'  # after RuntimeInfoHook, before the LoggerHook

    def __init__(self, num_samples: int = 4, seed: int = 0, patience: int = 3) -> None:
        if num_samples < 1 or patience < 1:
            raise ValueError(
                'ReferenceGainHook: num_samples and patience must be at least 1'
            )
        self.num_samples, self.seed, self.patience = num_samples, seed, patience
        self.batch: dict | None = None
        self._batch_size = 0
        self._skipped = False
        self.non_positive = 0  # validations in a row with a gain <= 0

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        model = runner.model
        if is_model_wrapper(model):
            if not isinstance(model, DistributedDataParallel):
                self._skip(runner, 'not measured under a sharding strategy')
                return
            model = model.module
        if self._skipped:
            return
        with preserved_random_state():
            if self.batch is None:
                self.batch = self._held_out_batch(runner)
                if self.batch is None:
                    return
            with self._autocast(runner, model):
                data = model.data_preprocessor(self.batch, False)
                losses = model.reference_losses(data['inputs'], self.seed)
        true = losses['true'].float().item()
        gains = {
            name: (losses[name].float().item() - true) / true
            for name in ('shuffled', 'none')
        }
        hub = runner.message_hub
        hub.update_scalar('val/reference_gain', gains['shuffled'])
        hub.update_scalar('val/no_reference_gain', gains['none'])
        hub.update_scalar('val/held_out_loss', true)
        self._check_use(runner, gains['shuffled'])

    def _check_use(self, runner, gain: float) -> None:
        """Count validations with a gain ≤ 0; warn once per such streak."""
        if self._batch_size < 2:
            return  # nothing to shuffle: the gain is 0 by construction
        self.non_positive = self.non_positive + 1 if gain <= 0 else 0
        if self.non_positive == self.patience:
            runner.logger.warning(
                f'reference gain {gain:+.4f} ≤ 0 for {self.patience} '
                f'validations in a row: {UNUSED_REFERENCE} (see "Is the '
                'adapter using its reference?" in docs/training.md)'
            )

    def _held_out_batch(self, runner) -> dict | None:
        """The collated held-out batch (built once)."""
        batch, self._batch_size, source = held_out_batch(runner.cfg, self.num_samples)
        if batch is None:
            self._skip(
                runner,
                f'not measured: {source} are streamed; give '
                'val_ann_file (records of files) to measure it',
            )
            return None
        note = (
            '; one sample, nothing to shuffle: val/reference_gain is 0'
            if self._batch_size < 2
            else ''
        )
        runner.logger.info(
            f'reference gain: measured on {self._batch_size} of {source}{note}'
        )
        return batch

    @staticmethod
    def _autocast(runner, model):
        """Training's mixed precision (the optim wrapper's context)."""
        wrapper = getattr(runner, 'optim_wrapper', None)
        if isinstance(wrapper, OptimWrapper):
            return wrapper.optim_context(model)
        return contextlib.nullcontext()

    def _skip(self, runner, why: str) -> None:
        if not self._skipped:
            runner.logger.log(logging.INFO, f'reference gain: {why}')
            self._skipped = True
