"""Adapter files in the published layouts, made by code of their own (key
names written out, numbering from a diffusers UNet's attn_processors), not
by the kit's export: tencent-ailab's (SD1.5/SDXL, base and Plus), InstantX's
(SD3.5) and XLabs' own names (FLUX.1, Chroma, Kontext)."""

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

from ..conftest import family_of


def cross_attention(unet) -> list[tuple[int, int]]:
    """``(official number, hidden width)`` per cross-attention layer: the
    layer's position in ``unet.attn_processors`` (self-attention counts)."""
    modules = dict(unet.named_modules())
    return [
        (index, modules[name[: -len('.processor')]].to_k.out_features)
        for index, name in enumerate(unet.attn_processors)
        if name.endswith('attn2.processor')
    ]


def resampler(
    rand,
    prefix: str,
    width: int,
    hidden: int,
    out: int,
    queries: int,
    time_aware: bool = False,
) -> dict:
    """A Resampler under the official (tencent-ailab / InstantX) names."""
    state = {
        prefix + 'latents': rand(1, queries, width),
        prefix + 'proj_in.weight': rand(width, hidden),
        prefix + 'proj_in.bias': rand(width),
        prefix + 'proj_out.weight': rand(out, width),
        prefix + 'proj_out.bias': rand(out),
        prefix + 'norm_out.weight': rand(out),
        prefix + 'norm_out.bias': rand(out),
    }
    if time_aware:  # InstantX: a timestep embedding and AdaLN per block
        state.update(
            {
                prefix + 'time_embedding.linear_1.weight': rand(width, 32),
                prefix + 'time_embedding.linear_1.bias': rand(width),
                prefix + 'time_embedding.linear_2.weight': rand(width, width),
                prefix + 'time_embedding.linear_2.bias': rand(width),
            }
        )
    for d in range(4):
        layer = f'{prefix}layers.{d}.'
        state.update(
            {
                layer + '0.norm1.weight': rand(width),
                layer + '0.norm1.bias': rand(width),
                layer + '0.norm2.weight': rand(width),
                layer + '0.norm2.bias': rand(width),
                layer + '0.to_q.weight': rand(width, width),
                layer + '0.to_kv.weight': rand(2 * width, width),
                layer + '0.to_out.weight': rand(width, width),
                layer + '1.0.weight': rand(width),
                layer + '1.0.bias': rand(width),
                layer + '1.1.weight': rand(4 * width, width),
                layer + '1.3.weight': rand(width, 4 * width),
            }
        )
        if time_aware:
            state.update(
                {
                    layer + '2.1.weight': rand(4 * width, width),
                    layer + '2.1.bias': rand(4 * width),
                }
            )
    return state


def official_file(tiny_families, variant, path, dtype=torch.float32, seed=0):
    """An adapter for the variant's tiny models in its family's published
    layout: tencent-ailab's (SD1.5/SDXL), InstantX's (SD3.5) or XLabs' own
    names (FLUX.1)."""
    folders = tiny_families[family_of(variant)]
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=generator).to(dtype)

    if family_of(variant) == 'sd3':  # tiny SD3: 2 blocks of 4 heads × 8
        inner, head, resampler_width = 32, 8, 64
        state = resampler(
            rand, 'image_proj.', resampler_width, 32, inner, 16, time_aware=True
        )  # SigLIP's 32-d states
        for i in range(2):
            state.update(
                {
                    f'ip_adapter.{i}.norm_ip.linear.weight': rand(
                        2 * inner, resampler_width
                    ),
                    f'ip_adapter.{i}.norm_ip.linear.bias': rand(2 * inner),
                    f'ip_adapter.{i}.to_k_ip.weight': rand(inner, inner),
                    f'ip_adapter.{i}.to_v_ip.weight': rand(inner, inner),
                    f'ip_adapter.{i}.norm_q.weight': rand(head),
                    f'ip_adapter.{i}.norm_k.weight': rand(head),
                    f'ip_adapter.{i}.norm_ip_k.weight': rand(head),
                }
            )
        save_file(state, str(path))
        return state
    if family_of(variant) in ('flux', 'chroma', 'flux_kontext', 'qwen_image'):
        inner, tokens = 32, 40 if family_of(variant) == 'qwen_image' else 48
        state = {
            'ip_adapter_proj_model.proj.weight': rand(4 * tokens, 16),
            'ip_adapter_proj_model.proj.bias': rand(4 * tokens),
            'ip_adapter_proj_model.norm.weight': rand(tokens),
            'ip_adapter_proj_model.norm.bias': rand(tokens),
        }
        for i in range(2):
            for kind in ('k', 'v'):
                name = f'double_blocks.{i}.processor.ip_adapter_double_stream_'
                state[f'{name}{kind}_proj.weight'] = rand(inner, tokens)
                state[f'{name}{kind}_proj.bias'] = rand(inner)
        save_file(state, str(path))
        return state
    unet = UNet2DConditionModel.from_pretrained(folders['base'], subfolder='unet')
    cross = unet.config.cross_attention_dim
    if 'plus' in variant:  # the Resampler: width 64 (one head), depth 4
        state = resampler(rand, 'image_proj.', 64, 32, cross, 16)
    else:  # Linear(16 → 4 · cross) + LayerNorm
        state = {
            'image_proj.proj.weight': rand(4 * cross, 16),
            'image_proj.proj.bias': rand(4 * cross),
            'image_proj.norm.weight': rand(cross),
            'image_proj.norm.bias': rand(cross),
        }
    for index, width in cross_attention(unet):
        state[f'ip_adapter.{index}.to_k_ip.weight'] = rand(width, cross)
        state[f'ip_adapter.{index}.to_v_ip.weight'] = rand(width, cross)
    save_file(state, str(path))
    return state
