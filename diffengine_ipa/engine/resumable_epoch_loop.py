"""An epoch-based training loop that resumes from any iteration."""

import torch
from mmengine.runner import EpochBasedTrainLoop

from ..registry import LOOPS
from .random_state import set_random_state

__all__ = ['ResumableEpochBasedTrainLoop']


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """MMEngine's ``EpochBasedTrainLoop``, resumable mid-epoch.

    Checkpoints are written every N iterations. MMEngine's loop resumes at
    the checkpoint's epoch *start* (and an iteration checkpoint written at
    the end of an epoch still names that epoch), so it would train batches
    twice. This loop takes the position from the iteration count and skips
    the batches of the current epoch that were already trained; the sampler
    shuffles per epoch from the run's seed, so they are the same batches.
    With ``RandomStateHook`` it also restores the random state saved in the
    checkpoint (the epoch's worker seeds, then the generators right before
    the next batch), so the resumed run continues the same random stream.
    """

    def run(self):
        self._epoch = self._iter // len(self.dataloader)
        return super().run()

    def run_epoch(self) -> None:
        done = self._iter - self._epoch * len(self.dataloader)
        resumed = self.runner.message_hub.pop_info('random_state')
        if self._iter == 0:  # a fresh run: keep the seed's stream
            resumed = None
        if resumed is not None:
            if done == 0 or resumed['epoch_start'] is None:
                set_random_state(resumed['now'])
                resumed = None
            else:  # the interrupted epoch's DataLoader seeds
                torch.set_rng_state(resumed['epoch_start'])
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        batches = iter(self.dataloader)
        for idx in range(len(self.dataloader)):
            if resumed is not None and idx == done:
                set_random_state(resumed['now'])
            # skipped ones are loaded, not trained; a stream that ends early
            # (shards with samples skipped as bad) ends the epoch
            data_batch = next(batches, None)
            if data_batch is None:
                break
            if idx >= done:
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
