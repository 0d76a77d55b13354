"""FLUX.1: a rectified-flow transformer, CLIP-L pooled + T5.

Its roles: training (:class:`Flux`), generation (:class:`FluxGeneration`),
XLabs' file layout (:class:`FluxLayout`); its random architectures; its
registry entry (:data:`FAMILY`).
"""

from typing import Any

import torch
from torch import nn

from ...errors import CheckpointError, UserError
from ...official_format.layouts import (
    BASE_PROJECTION,
    LAYER_KEY,
    AdapterLayout,
    check_input_width,
    consecutive_layer_parts,
    describe_layout,
    projection_part,
    require_keys,
)
from ...registry import ARCHITECTURES, LAYOUTS, MODELS
from ..objectives import RectifiedFlow
from ..random_models.architectures import (
    DIT_VAE,
    T5_XXL,
    TINY_CLIP_TEXT,
    clip_text_config,
    tiny_t5_config,
    vae_config,
)
from .diffusion_family import DiffusionFamily
from .family_entry import Family
from .family_generation import FamilyGeneration

__all__ = [
    'Flux',
    'FluxAdapterMixin',
    'FluxGeneration',
    'FluxLayout',
    'FAMILY',
    'FLUX_SCHEDULER',
    'pack_latents',
]

MAX_SEQUENCE_LENGTH = 512  # T5 tokens, FluxPipeline's default


def pack_latents(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (B, C, h, w) packed into 2×2 patches (B, h/2 · w/2, 4C), and
    the patches' position ids (h/2 · w/2, 3), as FluxPipeline makes them (its
    Kontext and Chroma pipelines' copies of these methods are the same)."""
    from diffusers import FluxPipeline

    batch, channels, height, width = latents.shape
    packed = FluxPipeline._pack_latents(latents, batch, channels, height, width)
    ids = FluxPipeline._prepare_latent_image_ids(
        batch, height // 2, width // 2, latents.device, latents.dtype
    )
    return packed, ids


class FluxGeneration(FamilyGeneration):
    """``FluxPipeline``: true CFG, the null image as the negative prompt's."""

    family_name = 'Flux'
    call_settings = dict(max_sequence_length=MAX_SEQUENCE_LENGTH)
    pipeline_class = 'FluxPipeline'
    controlnet_pipeline_class = 'FluxControlNetPipeline'
    controlnet_model_class = 'FluxControlNetModel'
    # FluxPipeline's unconditional image prompt: a black image, encoded.
    null_image = dict(pooled='black_image', hidden_states='black_image')
    generation_defaults = dict(
        steps=28, guidance_scale=3.5, negative_prompt=None, true_cfg_scale=None
    )
    # FluxPipeline's true CFG: true_cfg_scale > 1 with a negative prompt.
    true_cfg = True
    inference_dtype = 'bf16'
    size_multiple = 16  # 8× VAE, 2×2 patches

    @classmethod
    def load_ip_adapter(cls, pipe: Any, nested: list[dict[str, dict]]) -> None:
        pipe.load_ip_adapter(nested, weight_name=['ip_adapter'] * len(nested))

    @classmethod
    def image_prompt_kwargs(
        cls,
        images: list[torch.Tensor],
        nulls: list[torch.Tensor],
        guidance_scale: float,
    ) -> dict[str, Any]:
        """Per adapter (1, N, D); the null images as the negative prompt's."""
        return dict(
            ip_adapter_image_embeds=[image[None] for image in images],
            negative_ip_adapter_image_embeds=[null[None] for null in nulls],
        )


class FluxAdapterMixin:
    """What training needs of the families with FLUX.1's adapter (FLUX.1 and
    the families built on it, Qwen-Image): rectified flow with uniform
    timesteps and an unweighted loss, latents packed into 2×2 patches, K/V
    with biases reading ``joint_attention_dim``-wide tokens, XLabs' layout."""

    denoiser_name = 'transformer'
    layout = 'xlabs-flux'
    cache_dtype = 'bf16'  # text states: (512, 4096) per caption for FLUX.1
    # The transformer's patch embedding, whose weight the adapter's device
    # and dtype follow.
    patch_embedding = 'x_embedder'

    @classmethod
    def adapter_processor(cls) -> type:
        """The attention processor class of the adapter layers."""
        from diffusers.models.transformers.transformer_flux import (
            FluxIPAdapterAttnProcessor,
        )

        return FluxIPAdapterAttnProcessor

    def build_objective(self, scheduler_config: dict, **overrides) -> Any:
        return RectifiedFlow(
            scheduler_config, **dict(dict(weighting_scheme='none'), **overrides)
        )

    def check_latent_size(self, latents: torch.Tensor) -> None:
        if latents.shape[-1] % 2 or latents.shape[-2] % 2:
            raise UserError(
                f'latents of {tuple(latents.shape[-2:])} do not pack into 2×2 '
                'patches: use an image size that is a multiple of 16'
            )

    @classmethod
    def token_width(cls, denoiser: nn.Module) -> int:
        return denoiser.config.joint_attention_dim

    def install_adapter(self, projection: nn.Module) -> None:
        """K/V with biases; V starts at zero, so the adapter starts as a no-op
        (the image attention is added ungated to the block's output)."""
        transformer = self.transformer
        weight = getattr(transformer, self.patch_embedding).weight
        processors = dict(transformer.attn_processors)
        for name in self.adapter_layers(transformer):
            processor = self.adapter_processor()(
                hidden_size=transformer.inner_dim,
                cross_attention_dim=self.token_width(transformer),
                num_tokens=(projection.num_tokens,),
                device=weight.device,
                dtype=weight.dtype,
            )
            nn.init.zeros_(processor.to_v_ip[0].weight)
            nn.init.zeros_(processor.to_v_ip[0].bias)
            processors[name] = processor
        transformer.set_attn_processor(processors)


@MODELS.register_module()
class Flux(FluxAdapterMixin, DiffusionFamily):
    """FLUX.1 [dev] (and [schnell]), in XLabs' IP-Adapter layout.

    Text: ``FluxPipeline.encode_prompt`` (T5 states; CLIP-L's pooled output).
    Objective: rectified flow with uniform timesteps and an unweighted loss,
    the defaults of diffusers' ``train_dreambooth_flux.py``; the
    guidance-distilled [dev] model is fed the guidance ``guidance_scale``
    (3.5, FluxPipeline's default), so the adapter trains in the regime it
    generates in. Adapter: diffusers' ``FluxIPAdapterAttnProcessor`` (K/V with
    biases) on the 19 double-stream blocks, loaded by
    ``FluxIPAdapterMixin.load_ip_adapter``.

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id
            (``black-forest-labs/FLUX.1-dev``).
        objective: Overrides of :class:`RectifiedFlow`'s settings.
        guidance_scale: The distilled guidance the transformer gets in
            training (ignored by models without a guidance embedding).
        max_sequence_length: T5 tokens (512, as FluxPipeline).
    """

    generation = FluxGeneration
    components = dict(
        transformer=('diffusers', 'FluxTransformer2DModel'),
        vae=('diffusers', 'AutoencoderKL'),
        text_encoder=('transformers', 'CLIPTextModel'),
        text_encoder_2=('transformers', 'T5EncoderModel'),
        tokenizer=('transformers', 'CLIPTokenizer'),
        tokenizer_2=('transformers', 'T5TokenizerFast'),
    )

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        objective: dict | None = None,
        guidance_scale: float = 3.5,
        max_sequence_length: int = MAX_SEQUENCE_LENGTH,
    ) -> None:
        self.guidance_scale = guidance_scale
        self.max_sequence_length = max_sequence_length
        super().__init__(pretrained_model_name_or_path, objective)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``prompt_embeds`` (B, T5 tokens, 4096), ``pooled_prompt_embeds``
        (B, 768), as the pipeline encodes them."""
        embeds, pooled, _ = self.text_pipeline().encode_prompt(
            prompt=texts,
            prompt_2=None,
            device=self.text_encoder.device,
            max_sequence_length=self.max_sequence_length,
        )
        return dict(prompt_embeds=embeds, pooled_prompt_embeds=pooled)

    @classmethod
    def adapter_layers(cls, denoiser: nn.Module) -> list[str]:
        """The double-stream blocks, as diffusers' loader installs them."""
        return [
            name
            for name in denoiser.attn_processors
            if not name.startswith('single_transformer_blocks')
        ]

    def context_tokens(
        self,
        conditions: dict[str, torch.Tensor],
        packed: torch.Tensor,
        image_ids: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The transformer's image sequence and its position ids: the packed
        noisy latents alone (FLUX.1 [Kontext] appends its input image's)."""
        return packed, image_ids

    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        conditions: dict[str, torch.Tensor],
        image_tokens: torch.Tensor,
    ) -> torch.Tensor:
        """The velocity (B, C, h, w): latents packed into 2×2 patches, with
        position ids, σ and the distilled guidance, as FluxPipeline calls the
        transformer; the image tokens (B, N, D) reach the double blocks."""
        batch = noisy.shape[0]
        packed, image_ids = pack_latents(noisy)
        states = conditions['prompt_embeds']
        text_ids = torch.zeros(
            states.shape[1], 3, device=noisy.device, dtype=noisy.dtype
        )
        guidance = None
        if self.transformer.config.guidance_embeds:
            guidance = torch.full(
                (batch,), self.guidance_scale, device=noisy.device, dtype=torch.float32
            )
        tokens, ids = self.context_tokens(conditions, packed, image_ids)
        prediction = self.transformer(
            hidden_states=tokens,
            timestep=timesteps / 1000,
            guidance=guidance,
            pooled_projections=conditions['pooled_prompt_embeds'],
            encoder_hidden_states=states,
            txt_ids=text_ids,
            img_ids=ids,
            joint_attention_kwargs=dict(ip_hidden_states=[image_tokens]),
        ).sample[:, : packed.shape[1]]
        return self.unpack_latents(prediction, *noisy.shape[-2:])

    def unpack_latents(
        self, prediction: torch.Tensor, height: int, width: int
    ) -> torch.Tensor:
        """The transformer's output for :func:`pack_latents`' tokens as
        latents (B, C, ``height``, ``width``), as FluxPipeline unpacks them."""
        from diffusers import FluxPipeline

        scale = self.vae_scale_factor
        return FluxPipeline._unpack_latents(
            prediction, height * scale, width * scale, scale
        )


@LAYOUTS.register_module()
class FluxLayout(AdapterLayout):
    """XLabs' FLUX.1 layout: K/V with biases on the double-stream blocks."""

    name = 'xlabs-flux'
    loader = (
        "diffusers' FluxIPAdapterMixin.load_ip_adapter (FluxPipeline, "
        "FluxKontextPipeline, ChromaPipeline), XLabs' x-flux and ComfyUI nodes; "
        "Qwen-Image's: diffengine_ipa.load_ip_adapter (QwenImagePipeline)"
    )
    # T5-XXL's width: FLUX.1 [dev] / [schnell], FLUX.1 Kontext and Chroma
    # all read 4096-d tokens; a file's widths cannot tell them apart.
    families = {4096: 'FLUX.1-type: FLUX.1, Kontext or Chroma', 3584: 'Qwen-Image'}
    FILE_NAMES = (('image_proj.', 'ip_adapter_proj_model.'),)
    KV = {
        'to_k_ip': 'ip_adapter_double_stream_k_proj',
        'to_v_ip': 'ip_adapter_double_stream_v_proj',
    }

    def to_file(self, state: dict[str, torch.Tensor]) -> dict:
        """XLabs' names, in the order its loader needs (projection first)."""
        named = {}
        for key in sorted(state, key=lambda k: not k.startswith('image_proj.')):
            match = LAYER_KEY.match(key)
            if match:
                kind, param = match[2].split('.')
                name = f'double_blocks.{match[1]}.processor.{self.KV[kind]}.{param}'
            else:
                name = 'ip_adapter_proj_model.' + key[len('image_proj.') :]
            named[name] = state[key]
        return named

    def recognises(self, layer_keys: list[str]) -> bool:
        return any(key.endswith('_ip.bias') for key in layer_keys)

    def from_file(self, state: dict) -> dict:
        """XLabs' names → canonical (as diffusers' loader renames them)."""
        if not any(
            k.startswith(('ip_adapter_proj_model.', 'double_blocks.')) for k in state
        ):
            return state
        canonical = {}
        for key, value in state.items():
            if key.startswith('ip_adapter_proj_model.'):
                key = 'image_proj.' + key[len('ip_adapter_proj_model.') :]
            elif key.startswith('double_blocks.'):
                for ours, theirs in self.KV.items():
                    key = key.replace(theirs, ours)
                key = 'ip_adapter.' + key[len('double_blocks.') :].replace(
                    'processor.', ''
                )
            canonical[key] = value
        return canonical

    def validate(self, state: dict[str, torch.Tensor], source: str) -> None:
        proj = projection_part(state)
        require_keys(proj, BASE_PROJECTION, 'image_proj', source)
        width = proj['norm.weight'].shape[0]
        if proj['proj.weight'].shape[0] % width:
            raise CheckpointError(
                f'{source}: image_proj.proj.weight rows '
                f'{proj["proj.weight"].shape[0]} are not a multiple of the '
                f'token width {width}'
            )
        layers = consecutive_layer_parts(state, source)
        needed = {f'{kv}.{p}' for kv in self.KV for p in ('weight', 'bias')}
        for index, params in layers.items():
            require_keys(params, needed, f'ip_adapter.{index}', source, exact=True)
            for kind in self.KV:
                check_input_width(params, f'{kind}.weight', width, index, source)

    def describe(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        proj = projection_part(state)
        width = proj['norm.weight'].shape[0]
        rows, image_dim = proj['proj.weight'].shape
        return describe_layout(self, state, 'base', width, rows // width, image_dim)


# FLUX.1-dev, scheduler/: the shift follows the image size at inference.
FLUX_SCHEDULER = dict(
    _class_name='FlowMatchEulerDiscreteScheduler',
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)


FLUX_VAE = dict(DIT_VAE, shift_factor=0.1159, scaling_factor=0.3611)


# --- random architectures ----------------------------------------------------


@ARCHITECTURES.register_module(name='flux1_dev')
def flux1_dev() -> dict:
    """FLUX.1 [dev]: 11.9B transformer (19 double-stream, 38 single-stream
    blocks of 3072), guidance embedding, CLIP-L and T5-XXL, 16-channel VAE."""
    return dict(
        family='Flux',
        paired_encoder='clip-vit-large-patch14',
        resolution=1024,
        transformer=dict(
            patch_size=1,
            in_channels=64,
            num_layers=19,
            num_single_layers=38,
            attention_head_dim=128,
            num_attention_heads=24,
            joint_attention_dim=4096,
            pooled_projection_dim=768,
            guidance_embeds=True,
            axes_dims_rope=(16, 56, 56),
        ),
        vae=vae_config((128, 256, 512, 512), **FLUX_VAE),
        text_encoder=clip_text_config(768, 3072, 12, 12, 768),
        text_encoder_2=T5_XXL,
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=FLUX_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='mid_flux')
def mid_flux() -> dict:
    """FLUX.1 at full width with few blocks (1 double-, 2 single-stream) and
    a 2-layer T5-XXL: every part at its real size per layer, ~0.65B
    transformer parameters (for memory measurements on a CPU)."""
    spec = flux1_dev()
    spec['transformer'] = dict(spec['transformer'], num_layers=1, num_single_layers=2)
    spec['text_encoder_2'] = dict(T5_XXL, num_layers=2)
    spec['resolution'] = 512
    spec['family_settings'] = dict(max_sequence_length=128)
    return spec


@ARCHITECTURES.register_module(name='tiny_flux')
def tiny_flux() -> dict:
    """FLUX.1-shaped, tiny: double- and single-stream blocks, RoPE, guidance
    embedding, 2×2 latent packing."""
    return dict(
        family='Flux',
        paired_encoder='tiny_clip_vision',
        resolution=64,
        family_settings=dict(max_sequence_length=32),
        transformer=dict(
            patch_size=1,
            in_channels=16,  # 4 latent channels, packed 2×2
            num_layers=2,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=48,  # T5's width
            pooled_projection_dim=32,  # CLIP's pooled width
            guidance_embeds=True,
            axes_dims_rope=(4, 6, 6),
        ),
        vae=vae_config(
            (16, 32),
            norm_num_groups=16,
            **dict(FLUX_VAE, latent_channels=4, sample_size=64),
        ),
        text_encoder=TINY_CLIP_TEXT,
        text_encoder_2=tiny_t5_config(48),
        tokenizer=dict(),
        tokenizer_2=dict(),
        scheduler=FLUX_SCHEDULER,
    )


FAMILY = Family('flux', 'FLUX.1', Flux, architecture='flux1_dev', position=4)
