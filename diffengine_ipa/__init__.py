"""diffengine_ipa: train IP-Adapters for Stable Diffusion with MMEngine configs.

Importing the package is cheap: the heavy parts (torch, diffusers, transformers)
load only when a registered class is built or a submodule is imported.
"""

from typing import Any

from .version import __version__

__all__ = ['__version__', 'load_ip_adapter']


def load_ip_adapter(
    pipe: Any, file: Any, scale: float | list = 1.0, **kwargs: Any
) -> Any:
    """Load a Qwen-Image IP-Adapter into diffusers' ``QwenImagePipeline``
    (which has no loader of its own); see
    :func:`diffengine_ipa.models.families.qwen_image.load_ip_adapter`."""
    from .models.families.qwen_image import load_ip_adapter as load

    return load(pipe, file, scale=scale, **kwargs)
