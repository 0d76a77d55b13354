"""Trainable image projections: image-encoder features → tokens for the
denoiser's adapter attention.

Each projection declares which image features it reads (``'pooled'`` or
``'hidden_states'``, see :mod:`.image_encoders`); its input and output widths
come from the loaded image encoder and family, never from the config. All are
diffusers' own classes, so diffusers' ``load_ip_adapter`` builds the same
modules from our files (their official names live in
:mod:`diffengine_ipa.official_format`). ``forward(features, timesteps)`` takes
the denoising timesteps for the projections that use them.
"""

import logging

import torch
from diffusers.models import embeddings
from mmengine.logging import print_log

from ..errors import UserError
from ..registry import MODELS

__all__ = [
    'IPAdapterImageProjection',
    'IPAdapterPlusImageProjection',
    'IPAdapterTimeImageProjection',
    'IPAdapterFaceIDImageProjection',
    'IPAdapterFaceIDPlusImageProjection',
    'PROJECTIONS_BY_VARIANT',
    'faceid_variant',
]

HEAD_DIM = 64  # diffusers and ComfyUI infer Resampler heads as rows / 64


def _check_resampler(hidden_dims: int, depth: int) -> None:
    if hidden_dims % HEAD_DIM or depth != 4:
        raise UserError(
            f'model.image_projection: hidden_dims ({hidden_dims}) must be a '
            f'multiple of {HEAD_DIM} and depth 4 (got {depth}), as diffusers '
            'and ComfyUI expect of a Resampler'
        )


@MODELS.register_module()
class IPAdapterImageProjection(embeddings.ImageProjection):
    """IP-Adapter's projection: ``Linear(D_img, N·D)`` → N tokens → LayerNorm.

    SD1.5, SDXL (tencent-ailab's files) and FLUX.1 (XLabs' files) use it.

    Args:
        image_embed_dim: Width of the image encoder's pooled features.
        cross_attention_dim: Width of the tokens (the family's).
        num_tokens: Image tokens per image. diffusers and ComfyUI assume 4
            when they load a base IP-Adapter (16 for FLUX at 4096-d).
    """

    variant = 'base'  # the file's layout of keys (official_format)
    description = 'linear projection'  # what --info says a file of it is
    image_features = 'pooled'

    def __init__(
        self, image_embed_dim: int, cross_attention_dim: int, num_tokens: int = 4
    ) -> None:
        super().__init__(
            image_embed_dim=image_embed_dim,
            cross_attention_dim=cross_attention_dim,
            num_image_text_embeds=num_tokens,
        )
        if num_tokens != 4:
            print_log(
                f'num_tokens={num_tokens}: diffusers and ComfyUI assume 4 '
                'tokens for a base IP-Adapter and may not load this one.',
                logger='current',
                level=logging.WARNING,
            )

    @property
    def num_tokens(self) -> int:
        return self.num_image_text_embeds

    def forward(
        self, image_embeds: torch.Tensor, timesteps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, D_img) → (B, N, D)."""
        return super().forward(image_embeds)


@MODELS.register_module()
class IPAdapterPlusImageProjection(embeddings.IPAdapterPlusImageProjection):
    """IP-Adapter Plus: a perceiver ("Resampler") with ``num_tokens`` learnt
    queries reading the image encoder's penultimate-layer tokens.

    Args:
        image_embed_dim: Width of the image encoder's hidden states (1280 for
            ViT-H/14).
        cross_attention_dim: Width of the tokens (the family's).
        hidden_dims: The Resampler's width: 768 in the published SD1.5 Plus,
            1280 in SDXL Plus. Heads = ``hidden_dims / 64``.
        depth: Perceiver blocks (4 in every published Plus file).
        num_tokens: Learnt queries = image tokens (16 published).
        ffn_ratio: Feed-forward expansion.
    """

    variant = 'plus'
    description = 'Resampler'
    image_features = 'hidden_states'

    def __init__(
        self,
        image_embed_dim: int,
        cross_attention_dim: int,
        hidden_dims: int = 768,
        depth: int = 4,
        num_tokens: int = 16,
        ffn_ratio: float = 4,
    ) -> None:
        _check_resampler(hidden_dims, depth)
        super().__init__(
            embed_dims=image_embed_dim,
            output_dims=cross_attention_dim,
            hidden_dims=hidden_dims,
            depth=depth,
            dim_head=HEAD_DIM,
            heads=hidden_dims // HEAD_DIM,
            num_queries=num_tokens,
            ffn_ratio=ffn_ratio,
        )

    @property
    def num_tokens(self) -> int:
        return self.latents.shape[1]

    def forward(
        self, hidden_states: torch.Tensor, timesteps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, tokens_in, D_img) → (B, N, D)."""
        return super().forward(hidden_states)


@MODELS.register_module()
class IPAdapterTimeImageProjection(embeddings.IPAdapterTimeImageProjection):
    """SD3.5's time-aware Resampler (InstantX): learnt queries read the image
    encoder's penultimate-layer tokens, each block modulated (AdaLN) by the
    denoising timestep; it also hands that timestep embedding to the
    attention processors' image-token norms.

    Args:
        image_embed_dim: Width of the image encoder's hidden states (1152 for
            SigLIP so400m).
        cross_attention_dim: Width of the tokens (the transformer's, 2432
            for SD3.5 Large).
        hidden_dims: The Resampler's width (1280 published); heads =
            ``hidden_dims / 64``.
        depth: Blocks (4 published).
        num_tokens: Learnt queries = image tokens (64 published).
        timestep_in_dim: Width of the sinusoidal timestep features (320).
        ffn_ratio: Feed-forward expansion.
    """

    variant = 'time-resampler'
    description = 'timestep-aware Resampler'
    image_features = 'hidden_states'

    def __init__(
        self,
        image_embed_dim: int,
        cross_attention_dim: int,
        hidden_dims: int = 1280,
        depth: int = 4,
        num_tokens: int = 64,
        timestep_in_dim: int = 320,
        ffn_ratio: int = 4,
    ) -> None:
        _check_resampler(hidden_dims, depth)
        super().__init__(
            embed_dim=image_embed_dim,
            output_dim=cross_attention_dim,
            hidden_dim=hidden_dims,
            depth=depth,
            dim_head=HEAD_DIM,
            heads=hidden_dims // HEAD_DIM,
            num_queries=num_tokens,
            ffn_ratio=ffn_ratio,
            timestep_in_dim=timestep_in_dim,
        )

    @property
    def num_tokens(self) -> int:
        return self.latents.shape[1]

    @property
    def time_embedding_dim(self) -> int:
        """Width of the timestep embedding handed to the processors."""
        return self.latents.shape[2]

    def forward(
        self, hidden_states: torch.Tensor, timesteps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, tokens_in, D_img), (B, ) → tokens (B, N, D) and the timestep
        embedding (B, hidden_dims)."""
        if timesteps is None:
            raise ValueError('IPAdapterTimeImageProjection needs timesteps')
        return super().forward(hidden_states, timesteps)


FACE_ID_DIM = 512  # insightface's ArcFace (buffalo_l), what FaceID reads


@MODELS.register_module()
class IPAdapterFaceIDImageProjection(embeddings.IPAdapterFaceIDImageProjection):
    """IP-Adapter-FaceID: a face-ID embedding → MLP (``512 → 1024 → N·D``) →
    N tokens → LayerNorm (tencent-ailab's ``MLPProjModel``).

    FaceID trains a LoRA on every attention layer of the UNet with it
    (``lora_rank``, 128 in the published files); it reads no image-encoder
    features.

    Args:
        cross_attention_dim: Width of the tokens (the family's).
        id_embed_dim: Width of the face embedding (512).
        num_tokens: Image tokens (4 published; diffusers assumes 4).
        lora_rank: Rank of the UNet attention LoRA (0: none).
    """

    variant = 'faceid'
    description = 'FaceID'
    image_features = None  # the face embedding comes with the data
    face_id = True

    def __init__(
        self,
        cross_attention_dim: int,
        id_embed_dim: int = FACE_ID_DIM,
        num_tokens: int = 4,
        lora_rank: int = 128,
    ) -> None:
        super().__init__(
            image_embed_dim=id_embed_dim,
            cross_attention_dim=cross_attention_dim,
            mult=2,
            num_tokens=num_tokens,
        )
        self.lora_rank = lora_rank

    @property
    def id_embed_dim(self) -> int:
        return self.ff.net[0].proj.in_features

    def forward(
        self, features: dict | torch.Tensor, timesteps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``face_embeds`` (B, 512) → (B, N, D)."""
        if isinstance(features, dict):
            features = features['face_embeds']
        return super().forward(features)


@MODELS.register_module()
class IPAdapterFaceIDPlusImageProjection(embeddings.IPAdapterFaceIDPlusImageProjection):
    """IP-Adapter-FaceID-Plus / PlusV2 (tencent-ailab's ``ProjPlusModel``):
    the face-ID MLP makes N queries, which a 4-block perceiver refines
    with the image encoder's penultimate tokens of the aligned face crop;
    PlusV2 adds the MLP's tokens back (``shortcut``, scaled by
    ``shortcut_scale``). Trains with the UNet attention LoRA, as FaceID.

    Args:
        image_embed_dim: Width of the image encoder's hidden states (1280 for
            ViT-H/14).
        cross_attention_dim: Width of the tokens; the perceiver's too, with
            ``cross_attention_dim / 64`` heads of 64 (as the published
            files; one head for a narrower tiny model).
        id_embed_dim: Width of the face embedding (512).
        num_tokens: Image tokens (4 published).
        shortcut: PlusV2 (True) or Plus (False).
        shortcut_scale: PlusV2's weight of the perceiver's output (training;
            generation sets its own, ``--s-scale``).
        lora_rank: Rank of the UNet attention LoRA.
    """

    variant = 'faceid-plus'
    # Plus and PlusV2 files have the same keys: only metadata tells them apart
    description = (
        'FaceID-Plus or FaceID-PlusV2 (same keys; PlusV2 uses the shortcut, --s-scale)'
    )
    image_features = 'hidden_states'
    face_id = True

    def __init__(
        self,
        image_embed_dim: int,
        cross_attention_dim: int,
        id_embed_dim: int = FACE_ID_DIM,
        num_tokens: int = 4,
        shortcut: bool = False,
        shortcut_scale: float = 1.0,
        lora_rank: int = 128,
    ) -> None:
        super().__init__(
            embed_dims=cross_attention_dim,
            output_dims=cross_attention_dim,
            hidden_dims=image_embed_dim,
            id_embeddings_dim=id_embed_dim,
            depth=4,
            dim_head=HEAD_DIM,
            # diffusers reads heads as to_q rows / 64: one head below 64-d
            heads=max(1, cross_attention_dim // HEAD_DIM),
            num_tokens=num_tokens,
            ffn_ratio=4,
            ffproj_ratio=2,
        )
        self.shortcut, self.shortcut_scale = shortcut, shortcut_scale
        self.lora_rank = lora_rank

    @property
    def id_embed_dim(self) -> int:
        return self.proj.net[0].proj.in_features

    def forward(
        self, features: dict | torch.Tensor, timesteps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``face_embeds`` (B, 512) and ``clip_embeds`` (B, T, D_img) → (B,
        N, D); a bare tensor is diffusers' call (the face embedding, with
        ``self.clip_embeds`` set by the caller)."""
        if not isinstance(features, dict):
            return super().forward(features)
        self.clip_embeds = features['clip_embeds'][:, None]  # (B, 1, T, D_img)
        try:
            return super().forward(features['face_embeds'])
        finally:
            self.clip_embeds = None


# The projection that reads an official file of each variant.
PROJECTIONS_BY_VARIANT = {
    cls.variant: cls
    for cls in (
        IPAdapterImageProjection,
        IPAdapterPlusImageProjection,
        IPAdapterTimeImageProjection,
        IPAdapterFaceIDImageProjection,
        IPAdapterFaceIDPlusImageProjection,
    )
}


def faceid_variant(projection: type | dict, shortcut: bool = False) -> str | None:
    """The published FaceID adapter a projection makes: ``'FaceID'``,
    ``'FaceID-Plus'`` or, with the shortcut, ``'FaceID-PlusV2'`` (the same
    weights as Plus, another forward); None for the other projections.

    Args:
        projection: The projection class, or its config entry (``type``
            and ``shortcut``).
        shortcut: A class's ``shortcut`` argument.
    """
    if isinstance(projection, dict):
        shortcut = projection.get('shortcut', False)
        projection = MODELS.get(projection.get('type'))
    if not getattr(projection, 'face_id', False):
        return None
    if projection.variant == 'faceid':
        return 'FaceID'
    return 'FaceID-PlusV2' if shortcut else 'FaceID-Plus'
