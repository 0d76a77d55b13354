"""Where the kit's own ``tools/``, ``configs/`` and ``data/`` are.

In a checkout they sit beside the package; in an installed package,
``setup.py`` copied them under ``diffengine_ipa/.mim/`` (where ``mim`` finds
the tools and configs).
"""

import os.path as osp

__all__ = ['PACKAGE_PARENT', 'kit_folder', 'kit_path']

PACKAGE = osp.dirname(osp.abspath(__file__))
PACKAGE_PARENT = osp.dirname(PACKAGE)
MARKERS = {'tools': 'train.py', 'configs': 'ip_adapter', 'data': 'shapes_world'}


def kit_folder(name: str) -> str | None:
    """``tools``, ``configs`` or ``data``: the checkout's, else the installed
    copy's; None when neither is there."""
    for root in (PACKAGE_PARENT, osp.join(PACKAGE, '.mim')):
        if osp.exists(osp.join(root, name, MARKERS[name])):
            return osp.join(root, name)
    return None


def kit_path(name: str, *parts: str) -> str:
    """A path under :func:`kit_folder` ``name`` (under the checkout's when
    neither copy is there, so an error names the expected place)."""
    return osp.join(kit_folder(name) or osp.join(PACKAGE_PARENT, name), *parts)
