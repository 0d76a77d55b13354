"""MMEngine's CheckpointHook, made safe against kills, full disks and
diverging runs."""

import logging
import os

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from ...fileio import stale_temporaries
from ...registry import HOOKS
from ...work_dir import write_pointer

__all__ = ['AtomicCheckpointHook', 'STREAK_INFO']

# Runtime info that NonFiniteLossGuardHook publishes: non-finite losses in a
# row so far (0 when the last loss was finite).
STREAK_INFO = 'non_finite_streak'


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` in the order that never loses a checkpoint.

    MMEngine deletes the oldest kept checkpoint *before* writing the new
    one, and truncates ``last_checkpoint`` in place: a kill at the wrong
    moment (with ``max_keep_ckpts=1``) leaves no checkpoint at all, or a
    pointer to a deleted file. Here a save is: the checkpoint (atomic with
    ``backend_args=dict(backend='atomic_local')``), then the pointer
    (atomic, relative to the work dir), and only then the removal of the
    checkpoints that fall out of ``max_keep_ckpts``. No checkpoint is written
    while the loss is not finite (:class:`NonFiniteLossGuardHook`'s streak),
    so one written before the streak is never rotated out by one written
    during it. Temporary files that a killed run left behind are removed
    before training starts. Same arguments as
    :class:`mmengine.hooks.CheckpointHook`.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not is_main_process():
            return
        folders = {runner.work_dir, self.out_dir}
        for path in sorted(p for folder in folders for p in stale_temporaries(folder)):
            print_log(
                f'removed {path}, left by a run killed while writing',
                logger='current',
                level=logging.WARNING,
            )
            os.remove(path)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        streak = runner.message_hub.get_info(STREAK_INFO, 0)
        if streak:
            print_log(
                f'checkpoint at step {step} not written: the last '
                f'{streak} losses were not finite',
                logger='current',
                level=logging.WARNING,
            )
            return
        evicted = []
        if self.max_keep_ckpts > 0 and not (
            self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step
        ):
            kept = list(self.keep_ckpt_ids) + [step]
            evicted = kept[: -self.max_keep_ckpts]
            self.keep_ckpt_ids.clear()
            self.keep_ckpt_ids.extend(kept[-self.max_keep_ckpts :])
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if not is_main_process():
            return
        write_pointer(runner.work_dir, self.last_ckpt)
        for old in evicted:  # only now that the new one is durable
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(old)
            )
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # DeepSpeed's are folders
                self.file_backend.rmtree(path)
