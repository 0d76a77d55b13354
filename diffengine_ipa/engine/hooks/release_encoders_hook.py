"""Free the frozen encoders a training step from the embedding cache does
not use (see :mod:`diffengine_ipa.models.resident_encoders`)."""

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ...models.resident_encoders import release_encoders
from ...registry import HOOKS

__all__ = ['ReleaseEncodersHook']


@HOOKS.register_module()
class ReleaseEncodersHook(Hook):
    """Before training from an embedding cache, free the text encoders, the
    image encoder and the VAE encoder; validation and sample images load the
    text and image encoders back while they generate.

    A model whose state dict holds every weight (FSDP) keeps them.
    """

    priority = 'LOW'  # after the hooks that read the model before training

    def before_train(self, runner) -> None:
        dataset = runner.train_loop.dataloader.dataset
        if getattr(dataset, 'embedding_cache', None) is None:
            return
        model = (
            runner.model.module if is_model_wrapper(runner.model) else (runner.model)
        )
        if not getattr(model, 'adapter_only_state_dict', False):
            return
        freed = release_encoders(model)
        print_log(
            f'Training reads the embedding cache: freed {", ".join(freed)}',
            logger='current',
        )
