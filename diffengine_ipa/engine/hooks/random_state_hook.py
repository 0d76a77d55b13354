"""Keep the training random stream identical across resume and validation."""

from mmengine.hooks import Hook

from ...registry import HOOKS
from ..random_state import get_random_state, set_random_state

__all__ = ['RandomStateHook']


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Make a resumed run draw the random numbers of an uninterrupted one.

    Each checkpoint's message hub gets ``random_state``: the generators'
    state now, and torch's at the start of the epoch (which decides the
    DataLoader workers' seeds); ``ResumableEpochBasedTrainLoop`` restores
    them on ``--resume``. Before each epoch it keys the dataset's random
    transforms by the run's seed and the epoch, so they do not depend on
    the worker or on where the run was resumed. Validation runs inside a
    saved-and-restored state, so its sampling does not shift the training
    stream.
    """

    priority = 'NORMAL'  # before AdapterCheckpointHook makes it plain data

    def __init__(self) -> None:
        self.epoch_start = None
        self.before_validation = None

    def before_train_epoch(self, runner) -> None:
        self.epoch_start = get_random_state()['torch']
        dataset = getattr(runner.train_dataloader, 'dataset', None)
        if hasattr(dataset, 'set_draw_epoch'):  # the data pipeline's draws
            dataset.set_draw_epoch(runner.seed, runner.epoch)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['message_hub']['runtime_info']['random_state'] = dict(
            now=get_random_state(), epoch_start=self.epoch_start
        )

    def before_val(self, runner) -> None:
        self.before_validation = get_random_state()

    def after_val(self, runner) -> None:
        if self.before_validation is not None:
            set_random_state(self.before_validation)
            self.before_validation = None
