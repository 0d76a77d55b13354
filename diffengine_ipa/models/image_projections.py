"""Trainable image projections: CLIP image features → tokens for the UNet.

Each projection declares which image features it reads, what a dropped
(unconditional) image is, and how its parameters map to the official
IP-Adapter file; its input and output widths come from the loaded image
encoder and UNet, never from the config. Both are diffusers' own classes, so
diffusers' ``load_ip_adapter`` builds the same modules from our files.
"""
import logging

from diffusers.models import embeddings
from mmengine.logging import print_log

from ..errors import UserError
from ..registry import MODELS

__all__ = ['IPAdapterImageProjection', 'IPAdapterPlusImageProjection']

HEAD_DIM = 64  # diffusers and ComfyUI infer the Plus head count as rows / 64


@MODELS.register_module()
class IPAdapterImageProjection(embeddings.ImageProjection):
    """IP-Adapter's projection: ``Linear(D_img, N·D_ctx)`` → N tokens → LayerNorm.

    Args:
        image_embed_dim: Width of the image encoder's pooled ``image_embeds``.
        cross_attention_dim: The UNet's cross-attention width.
        num_tokens: Image tokens per image. diffusers and ComfyUI assume 4
            when they load a base adapter.
    """

    variant = 'base'
    # The image encoder output this projection reads, and the unconditional
    # image: a zero embedding (tutorial_train.py, diffusers' pipelines).
    image_features = 'image_embeds'
    null_image = 'zero_features'

    def __init__(self, image_embed_dim: int, cross_attention_dim: int,
                 num_tokens: int = 4) -> None:
        super().__init__(
            image_embed_dim=image_embed_dim,
            cross_attention_dim=cross_attention_dim,
            num_image_text_embeds=num_tokens)
        if num_tokens != 4:
            print_log(
                f'num_tokens={num_tokens}: diffusers and ComfyUI assume 4 '
                'tokens for a base IP-Adapter and will not load this one.',
                logger='current', level=logging.WARNING)

    @property
    def num_tokens(self) -> int:
        return self.num_image_text_embeds

    def official_key_map(self, prefix: str = '') -> dict[str, str]:
        """``{prefix + our name: 'image_proj.' + official name}``."""
        return {
            prefix + name: 'image_proj.' + name.replace('image_embeds.', 'proj.')
            for name, _ in self.named_parameters()
        }


@MODELS.register_module()
class IPAdapterPlusImageProjection(embeddings.IPAdapterPlusImageProjection):
    """IP-Adapter Plus: a perceiver ("Resampler") with ``num_tokens`` learnt
    queries reading the image encoder's penultimate-layer patch tokens.

    Args:
        image_embed_dim: Width of the image encoder's hidden states (1280 for
            ViT-H/14).
        cross_attention_dim: The UNet's cross-attention width.
        hidden_dims: The Resampler's width: 768 in the published SD1.5 Plus,
            1280 in SDXL Plus. Heads = ``hidden_dims / 64``.
        depth: Perceiver blocks (4 in every published Plus file).
        num_tokens: Learnt queries = image tokens (16 published).
        ffn_ratio: Feed-forward expansion.
    """

    variant = 'plus'
    # Penultimate hidden states; a dropped image is the features of an
    # all-zero pixel input (tutorial_train_plus.py, diffusers' pipelines).
    image_features = 'penultimate_hidden_states'
    null_image = 'zero_pixels'

    def __init__(self, image_embed_dim: int, cross_attention_dim: int,
                 hidden_dims: int = 768, depth: int = 4, num_tokens: int = 16,
                 ffn_ratio: float = 4) -> None:
        if hidden_dims % HEAD_DIM or depth != 4:
            raise UserError(
                f'model.image_projection: hidden_dims ({hidden_dims}) must be '
                f'a multiple of {HEAD_DIM} and depth 4 (got {depth}), as '
                'diffusers and ComfyUI expect of a Plus adapter')
        super().__init__(
            embed_dims=image_embed_dim,
            output_dims=cross_attention_dim,
            hidden_dims=hidden_dims,
            depth=depth,
            dim_head=HEAD_DIM,
            heads=hidden_dims // HEAD_DIM,
            num_queries=num_tokens,
            ffn_ratio=ffn_ratio)

    @property
    def num_tokens(self) -> int:
        return self.latents.shape[1]

    def official_key_map(self, prefix: str = '') -> dict[str, str]:
        """``{prefix + our name: 'image_proj.' + official name}``; K and V map
        to the same ``to_kv`` weight, stacked in that order."""
        renames = (('.ln0.', '.0.norm1.'), ('.ln1.', '.0.norm2.'),
                   ('.attn.to_q.', '.0.to_q.'), ('.attn.to_k.', '.0.to_kv.'),
                   ('.attn.to_v.', '.0.to_kv.'), ('.attn.to_out.0.', '.0.to_out.'),
                   ('.ff.0.', '.1.0.'), ('.ff.1.net.0.proj.', '.1.1.'),
                   ('.ff.1.net.2.', '.1.3.'))
        keys = {}
        for name, _ in self.named_parameters():
            official = name
            for ours, theirs in renames:
                official = official.replace(ours, theirs)
            keys[prefix + name] = 'image_proj.' + official
        return keys
