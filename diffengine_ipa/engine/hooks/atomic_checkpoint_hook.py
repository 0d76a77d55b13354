"""MMEngine's CheckpointHook with an atomic ``last_checkpoint`` pointer."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from ...fileio import atomic_write_bytes
from ...registry import HOOKS

__all__ = ['AtomicCheckpointHook']


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose ``last_checkpoint`` file is replaced
    atomically: MMEngine truncates and rewrites it in place, so a kill at
    that moment leaves it empty and ``--resume`` finds no checkpoint.

    The checkpoints themselves are atomic through
    ``backend_args=dict(backend='atomic_local')``. Same arguments as
    :class:`mmengine.hooks.CheckpointHook`.
    """

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # As MMEngine 0.10's, but for the pointer write at the end.
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                old = self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(
                        self.keep_ckpt_ids.popleft()))
                if is_main_process() and self.file_backend.isfile(old):
                    self.file_backend.remove(old)
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args,
            **self.args)
        if is_main_process():
            atomic_write_bytes(osp.join(runner.work_dir, 'last_checkpoint'),
                               str(self.last_ckpt).encode())
