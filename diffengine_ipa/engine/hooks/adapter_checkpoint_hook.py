"""Adapter-only, self-describing, safe-to-load checkpoints."""

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ...official_format import adapter_metadata
from ...registry import HOOKS
from ..plain_checkpoint import restore_history_buffers, to_plain

__all__ = ['AdapterCheckpointHook']


@HOOKS.register_module()
class AdapterCheckpointHook(Hook):
    """Prepare every checkpoint the runner writes, and undo it on load.

    On save: it keeps the adapter's weights only (the model's
    ``state_dict`` usually holds nothing else; under FSDP it holds all); it
    adds ``meta['ip_adapter']`` (the official key of each weight, taken from
    the denoiser's own ``attn_processors`` order, plus the layout, family,
    widths and sources), so
    ``tools/convert.py`` needs nothing but the file; and it turns the
    checkpoint into plain data, loadable with ``weights_only=True``.
    On load: it rebuilds MMEngine's history buffers for ``--resume``.
    """

    priority = 'VERY_LOW'  # after any hook that adds to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        adapter = model.adapter_parameter_names()
        checkpoint['state_dict'] = type(checkpoint['state_dict'])(
            (k, v) for k, v in checkpoint['state_dict'].items() if k in adapter
        )
        checkpoint['meta']['ip_adapter'] = adapter_metadata(model)
        checkpoint.update(to_plain(checkpoint))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            restore_history_buffers(checkpoint['message_hub'])
