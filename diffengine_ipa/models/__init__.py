"""Models: the IP-Adapter recipe and the components it is assembled from."""
from .data_preprocessor import IPAdapterDataPreprocessor
from .image_projections import IPAdapterImageProjection
from .ip_adapter import IPAdapter, condition_drops
from .model_families import build_family_component, write_family
from .model_sources import load_component
from .prompt_encoders import SD15PromptEncoder, SDXLPromptEncoder
from .unet_surgery import install_ip_adapter, ip_adapter_key_map

__all__ = [
    'IPAdapter', 'IPAdapterDataPreprocessor', 'IPAdapterImageProjection',
    'SD15PromptEncoder', 'SDXLPromptEncoder', 'build_family_component',
    'install_ip_adapter',
    'ip_adapter_key_map', 'load_component', 'condition_drops',
    'write_family'
]
