"""An exponential moving average of the adapter's weights (only)."""

import torch
from mmengine.hooks import EMAHook
from mmengine.model import ExponentialMovingAverage, is_model_wrapper
from torch import nn

from ...registry import HOOKS, MODELS

__all__ = ['AdapterEMA', 'AdapterEMAHook']


def _adapter_copy(model: nn.Module) -> nn.Module:
    """A module holding a detached copy of each adapter parameter under its
    own name (``module.state_dict()`` keys = the model's adapter keys)."""
    root = nn.Module()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        *path, leaf = name.split('.')
        parent = root
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.register_parameter(
            leaf, nn.Parameter(param.detach().clone(), requires_grad=False)
        )
    return root


@MODELS.register_module()
class AdapterEMA(ExponentialMovingAverage):
    """MMEngine's ``ExponentialMovingAverage`` of the trainable (adapter)
    parameters only: the frozen base is not copied, so the average costs the
    adapter's size (~86 MB for SD1.5), not the model's.

    Args:
        model: The model whose adapter is averaged.
        momentum: ``ema = (1 - momentum) · ema + momentum · weights``.
        interval: Steps between updates.
    """

    def __init__(
        self,
        model: nn.Module,
        momentum: float = 0.0002,
        interval: int = 1,
        device: torch.device | None = None,
        update_buffers: bool = False,
    ) -> None:
        nn.Module.__init__(self)  # not the base's deepcopy of the model
        if not 0.0 < momentum < 1.0:
            raise ValueError(f'AdapterEMA: momentum must be in (0, 1), got {momentum}')
        self.module = _adapter_copy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.interval, self.momentum = interval, momentum
        self.register_buffer('steps', torch.tensor(0, dtype=torch.long, device=device))
        self.update_buffers = False  # the adapter has none
        self.avg_parameters = dict(self.module.named_parameters())


@HOOKS.register_module()
class AdapterEMAHook(EMAHook):
    """MMEngine's ``EMAHook`` on the adapter only (:class:`AdapterEMA`).

    Validation and test run with the averaged weights, as with
    ``EMAHook``. Checkpoints keep the raw weights in ``state_dict`` and the
    averaged ones in ``ema_state_dict`` (``module.<name>``), which
    ``tools/convert.py --ema`` exports; ``--resume`` restores both,
    ``load_from`` starts the average from the loaded weights.

    Args:
        momentum: See :class:`AdapterEMA`.
        **kwargs: As for ``EMAHook`` (``begin_iter``, ``interval`` ...).
    """

    def __init__(self, momentum: float = 0.0002, **kwargs) -> None:
        kwargs.setdefault('ema_type', 'AdapterEMA')
        super().__init__(momentum=momentum, **kwargs)

    def before_run(self, runner) -> None:
        model = runner.model
        self.src_model = model.module if is_model_wrapper(model) else model
        self.ema_model = MODELS.build(
            self.ema_cfg, default_args=dict(model=self.src_model)
        )

    def _swap_ema_parameters(self) -> None:
        """Swap the adapter's weights with the averaged ones, by name."""
        source = dict(self.src_model.named_parameters())
        for name, averaged in self.ema_model.avg_parameters.items():
            raw = source[name]
            kept = averaged.data.clone()
            averaged.data.copy_(raw.data)
            raw.data.copy_(kept)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['ema_state_dict'] = self.ema_model.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'ema_state_dict' in checkpoint and runner._resume:
            self.ema_model.load_state_dict(checkpoint['ema_state_dict'])
            return
        loaded = checkpoint['state_dict']
        for name, averaged in self.ema_model.avg_parameters.items():
            if name in loaded:
                averaged.data.copy_(loaded[name])
