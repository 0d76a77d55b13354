"""Which modules FSDP shards on their own: the denoiser's repeated blocks."""

from torch import nn

from ..registry import FUNCTIONS

__all__ = ['block_wrap_policy']


@FUNCTIONS.register_module()
def block_wrap_policy(
    module: nn.Module, recurse: bool, nonwrapped_numel: int, block_names: tuple = ()
) -> bool:
    """FSDP auto-wrap policy: one FSDP unit per block named in
    ``block_names`` (class names, e.g. FLUX's ``FluxTransformerBlock``), as
    torch's ``transformer_auto_wrap_policy`` does for classes; a config can
    name classes as strings.

    Use in a strategy: ``model_wrapper=dict(auto_wrap_policy=dict(
    type='block_wrap_policy', block_names=[...]))``.
    """
    if recurse:
        return True  # look inside every module
    return type(module).__name__ in block_names
