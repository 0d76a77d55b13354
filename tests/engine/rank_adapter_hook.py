"""A test hook: each rank saves its adapter weights before and after
training (``adapter_rank<R>_{start,end}.pt`` in the work dir)."""

import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from diffengine_ipa.registry import HOOKS


@HOOKS.register_module()
class SaveRankAdapterHook(Hook):
    def before_train(self, runner) -> None:
        self._save(runner, 'start')

    def after_train(self, runner) -> None:
        self._save(runner, 'end')

    @staticmethod
    def _save(runner, when: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save(
            model.state_dict(),
            osp.join(runner.work_dir, f'adapter_rank{runner.rank}_{when}.pt'),
        )
