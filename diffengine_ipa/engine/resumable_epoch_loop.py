"""An epoch-based training loop that resumes from any iteration."""
from mmengine.runner import EpochBasedTrainLoop

from ..registry import LOOPS

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
    """

    def run(self):
        self._epoch = self._iter // len(self.dataloader)
        return super().run()

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)
        for idx, data_batch in enumerate(self.dataloader):
            if idx >= done:
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
