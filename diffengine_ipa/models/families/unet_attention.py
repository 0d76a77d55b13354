"""Decoupled cross-attention: install IP-Adapter processors in a UNet.

Layer numbering follows the official file: a layer's number is its index in
``unet.attn_processors`` (self-attention layers count too), so cross-attention
layers of Stable Diffusion get the odd numbers 1, 3, 5, ... Always enumerated
from the actual model, never from a hand-written list.
"""
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
from torch import nn

__all__ = ['install_ip_adapter', 'ip_adapter_key_map', 'cross_attention_layers']


def cross_attention_layers(unet: nn.Module) -> dict[str, nn.Module]:
    """``{processor name: Attention module}`` of every cross-attention layer."""
    modules = dict(unet.named_modules())
    layers = {}
    for name in unet.attn_processors:
        attention = modules[name.removesuffix('.processor')]
        if attention.is_cross_attention:
            layers[name] = attention
    return layers


def install_ip_adapter(unet: nn.Module, num_tokens: int = 4,
                       scale: float = 1.0) -> None:
    """Give each cross-attention layer trainable ``to_k_ip``/``to_v_ip``.

    Uses diffusers' ``IPAdapterAttnProcessor2_0`` (out = text attention +
    scale · image attention, same query); K/V start as copies of the layer's
    own ``to_k``/``to_v``, as in the reference training scripts.
    """
    processors = dict(unet.attn_processors)
    for name, attention in cross_attention_layers(unet).items():
        weight = attention.to_k.weight
        processor = IPAdapterAttnProcessor2_0(
            hidden_size=attention.to_k.out_features,
            cross_attention_dim=attention.to_k.in_features,
            num_tokens=(num_tokens, ),
            scale=scale).to(device=weight.device, dtype=weight.dtype)
        processor.to_k_ip[0].weight.data.copy_(attention.to_k.weight.data)
        processor.to_v_ip[0].weight.data.copy_(attention.to_v.weight.data)
        processors[name] = processor
    unet.set_attn_processor(processors)


def ip_adapter_key_map(unet: nn.Module, prefix: str = '') -> dict[str, str]:
    """``{prefix + our K/V weight name: 'ip_adapter.<index>.to_{k,v}_ip.weight'}``."""
    keys = {}
    for index, (name, processor) in enumerate(unet.attn_processors.items()):
        if isinstance(processor, IPAdapterAttnProcessor2_0):
            for kind in ('to_k_ip', 'to_v_ip'):
                keys[f'{prefix}{name}.{kind}.0.weight'] = (
                    f'ip_adapter.{index}.{kind}.weight')
    return keys
