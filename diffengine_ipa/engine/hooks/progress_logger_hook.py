"""MMEngine's LoggerHook, which also logs the first iterations."""

from mmengine.hooks import LoggerHook

from ...registry import HOOKS

__all__ = ['ProgressLoggerHook']


@HOOKS.register_module()
class ProgressLoggerHook(LoggerHook):
    """``LoggerHook`` that logs each of the first ``first_iters`` training
    iterations too (then every ``interval``), so a slow start (model
    loading, the first step's kernel choices, a slow data loader) shows on
    the console at once instead of after ``interval`` iterations.

    The extra lines go to the log only; ``scalars.json`` keeps the
    interval's records.

    Args:
        first_iters: How many iterations from the start of a run to log.
        **kwargs: As for :class:`mmengine.hooks.LoggerHook`.
    """

    def __init__(self, first_iters: int = 3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.first_iters = first_iters
        self._start_iter = None

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._start_iter = runner.iter  # a resumed run starts here

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        regular = self.every_n_inner_iters(
            batch_idx, self.interval
        ) or self.end_of_epoch(runner.train_dataloader, batch_idx)
        start = self._start_iter or 0
        if not regular and runner.iter < start + self.first_iters:
            _, log_str = runner.log_processor.get_log_after_iter(
                runner, batch_idx, 'train'
            )
            runner.logger.info(log_str)
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
