"""The official IP-Adapter file formats: the layouts that diffusers, ComfyUI
and the original projects load (tencent-ailab for SD1.5/SDXL, InstantX for
SD3.5, XLabs for FLUX.1), reading files safely, converting ours to them, and
checking that a file fits a model."""

from .conversion import (
    NeedsLayerOrder,
    adapter_metadata,
    adapter_weights,
    cast_adapter,
    compare_adapter,
    expected_adapter,
    load_adapter,
    load_adapter_into,
    load_official_state_dict,
    official_key_map,
    official_state_dict,
    read_adapter,
    rename_to_official,
    to_official,
)
from .files import (
    TUTORIAL_FILES,
    find_checkpoint,
    load_weights_file,
    nest_official,
    save_official,
)
from .layouts import LAYOUTS, describe_official, layout_of, validate_official

__all__ = [
    'LAYOUTS',
    'NeedsLayerOrder',
    'TUTORIAL_FILES',
    'adapter_metadata',
    'adapter_weights',
    'cast_adapter',
    'compare_adapter',
    'describe_official',
    'expected_adapter',
    'find_checkpoint',
    'layout_of',
    'load_adapter',
    'load_adapter_into',
    'load_official_state_dict',
    'load_weights_file',
    'nest_official',
    'official_key_map',
    'official_state_dict',
    'read_adapter',
    'rename_to_official',
    'save_official',
    'to_official',
    'validate_official',
]
