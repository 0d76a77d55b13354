"""Models: the IP-Adapter recipe and the components it is assembled from."""

from .data_preprocessor import IPAdapterDataPreprocessor
from .families import SD3, SD15, SDXL, DiffusionFamily, Flux
from .image_encoders import (
    CLIPImageEncoder,
    Dinov2ImageEncoder,
    ImageEncoder,
    SiglipImageEncoder,
)
from .image_projections import (
    IPAdapterImageProjection,
    IPAdapterPlusImageProjection,
    IPAdapterTimeImageProjection,
)
from .ip_adapter import IPAdapter, condition_drops
from .model_sources import load_component

__all__ = [
    'IPAdapter',
    'IPAdapterDataPreprocessor',
    'DiffusionFamily',
    'SD15',
    'SDXL',
    'SD3',
    'Flux',
    'ImageEncoder',
    'CLIPImageEncoder',
    'SiglipImageEncoder',
    'Dinov2ImageEncoder',
    'IPAdapterImageProjection',
    'IPAdapterPlusImageProjection',
    'IPAdapterTimeImageProjection',
    'condition_drops',
    'load_component',
]
