"""A progress bar with ETA over the images that validation and test
generate (a person at a terminal sees them come; logs stay clean)."""

import sys

from mmengine.hooks import Hook

from ...registry import HOOKS

__all__ = ['GenerationProgressHook']


@HOOKS.register_module()
class GenerationProgressHook(Hook):
    """``tqdm`` over the evaluation cases of each validation and test run,
    on rank 0, when stderr is a terminal (or ``always``).

    Args:
        always: Show the bar when stderr is not a terminal too.
    """

    priority = 'LOW'

    def __init__(self, always: bool = False) -> None:
        self.always = always
        self._bar = None

    def _open(self, runner, loader, what: str) -> None:
        from mmengine.dist import is_main_process

        if not (is_main_process() and (self.always or sys.stderr.isatty())):
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=len(loader),
            desc=f'{what}: generating',
            unit='image',
            leave=False,
            dynamic_ncols=True,
        )

    def _step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def before_val_epoch(self, runner) -> None:
        self._open(runner, runner.val_dataloader, 'validation')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._close()

    def before_test_epoch(self, runner) -> None:
        self._open(runner, runner.test_dataloader, 'test')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._close()
