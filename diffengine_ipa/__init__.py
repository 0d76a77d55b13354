"""diffengine_ipa: train IP-Adapters for Stable Diffusion with MMEngine configs.

Importing the package is cheap: the heavy parts (torch, diffusers, transformers)
load only when a registered class is built or a submodule is imported.
"""

from .version import __version__

__all__ = ['__version__']
