"""Qwen-Image: a 60-block MMDiT (joint attention only), Qwen2.5-VL text,
a 3D (video) VAE used with one frame.

No diffusers pipeline of Qwen-Image takes an IP-Adapter (0.42), so this
module brings its own, in FLUX.1's form: per block, image K/V (with biases)
read from the projected image tokens beside the text stream, attended by the
image stream's query; the result is added, scaled, to the image stream's
attention output. Its parts:

* :class:`QwenImageIPAdapterAttnProcessor`: the processor (training and
  generation use the same one);
* :class:`QwenImageIPAdapterMixin` (on :class:`QwenImageIPAdapterPipeline`)
  and :func:`load_ip_adapter`: the loader a diffusers user calls on a
  ``QwenImagePipeline`` (``diffengine_ipa.load_ip_adapter(pipe, file)``),
  written as diffusers' ``FluxIPAdapterMixin`` is, so it can be upstreamed;
* the family's roles: training (:class:`QwenImage`), generation
  (:class:`QwenImageGeneration`); its file layout is XLabs' FLUX.1 one
  (``xlabs-flux``: ``image_proj.*`` and ``ip_adapter.<i>.to_{k,v}_ip.*``,
  XLabs' names in a ``.safetensors``), the family named in the metadata;
* its random architectures and registry entry.
"""

import contextlib
import os.path as osp
from collections.abc import Iterator
from typing import Any

import torch
from diffusers import QwenImagePipeline
from torch import nn

from ...errors import UserError
from ...registry import ARCHITECTURES, MODELS
from .diffusion_family import DiffusionFamily
from .family_entry import Family
from .flux import FluxAdapterMixin, FluxGeneration

__all__ = [
    'QwenImage',
    'QwenImageGeneration',
    'QwenImageIPAdapterAttnProcessor',
    'QwenImageIPAdapterMixin',
    'QwenImageIPAdapterPipeline',
    'load_ip_adapter',
    'FAMILY',
]

MAX_SEQUENCE_LENGTH = 512  # text tokens, QwenImagePipeline's default
XLABS_KV = {
    'ip_adapter_double_stream_k_proj': 'to_k_ip',
    'ip_adapter_double_stream_v_proj': 'to_v_ip',
}


# --- the processor -------------------------------------------------------------


class QwenImageIPAdapterAttnProcessor(nn.Module):
    """Qwen-Image's joint attention plus decoupled image attention.

    The joint attention is diffusers' ``QwenDoubleStreamAttnProcessor2_0``,
    unchanged; then, per adapter, ``img_out += scale · attn(q, k_ip, v_ip)``
    with ``q`` the image stream's (RMS-normed) query before RoPE and K/V
    (with biases) from that adapter's image tokens, as FLUX.1's
    ``FluxIPAdapterAttnProcessor``.

    Args:
        hidden_size: The attention's width (heads × head dim).
        cross_attention_dim: The image tokens' width.
        num_tokens: Image tokens per adapter (one entry per adapter).
        scale: The adapters' strength (one per adapter, or one for all).
    """

    def __init__(
        self,
        hidden_size: int,
        cross_attention_dim: int,
        num_tokens: tuple[int, ...] = (4,),
        scale: float | list = 1.0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        from diffusers.models.transformers.transformer_qwenimage import (
            QwenDoubleStreamAttnProcessor2_0,
        )

        num_tokens = (
            list(num_tokens) if isinstance(num_tokens, (list, tuple)) else [num_tokens]
        )
        self.scale = scale if isinstance(scale, list) else [scale] * len(num_tokens)
        self.joint = QwenDoubleStreamAttnProcessor2_0()
        self.to_k_ip = nn.ModuleList(
            nn.Linear(cross_attention_dim, hidden_size, device=device, dtype=dtype)
            for _ in num_tokens
        )
        self.to_v_ip = nn.ModuleList(
            nn.Linear(cross_attention_dim, hidden_size, device=device, dtype=dtype)
            for _ in num_tokens
        )

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_hidden_states_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
        ip_hidden_states: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from diffusers.models.attention_dispatch import dispatch_attention_fn

        image_out, text_out = self.joint(
            attn,
            hidden_states,
            encoder_hidden_states,
            encoder_hidden_states_mask,
            attention_mask,
            image_rotary_emb,
        )
        if not ip_hidden_states:
            return image_out, text_out
        batch = hidden_states.shape[0]
        head_dim = attn.inner_dim // attn.heads
        query = attn.to_q(hidden_states).unflatten(-1, (-1, head_dim))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        for tokens, scale, to_k, to_v in zip(
            ip_hidden_states, self.scale, self.to_k_ip, self.to_v_ip, strict=False
        ):
            tokens = tokens.reshape(tokens.shape[0], -1, tokens.shape[-1])
            if tokens.shape[0] != batch:  # one image prompt for the batch
                tokens = tokens.repeat(batch // tokens.shape[0], 1, 1)
            key = to_k(tokens).unflatten(-1, (-1, head_dim))
            value = to_v(tokens).unflatten(-1, (-1, head_dim))
            attended = dispatch_attention_fn(
                query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False
            )
            image_out = image_out + scale * attended.flatten(2, 3).to(query.dtype)
        return image_out, text_out


# --- the loader (diffusers' side) ----------------------------------------------


def _adapter_state(source: Any, weight_name: str | None, subfolder: str) -> dict:
    """``{'image_proj': ..., 'ip_adapter': ...}`` from a nested dict, a flat
    one (canonical or XLabs' names) or a ``.safetensors``/``.bin`` file."""
    if isinstance(source, dict):
        flat = source
    else:
        path = str(source)
        if osp.isdir(path):
            path = osp.join(
                path, subfolder or '', weight_name or 'ip_adapter.safetensors'
            )
        if not osp.isfile(path):
            raise ValueError(f'{path}: no such IP-Adapter file')
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file

            flat = load_file(path)
        else:
            flat = torch.load(path, map_location='cpu', weights_only=True)
    if set(flat) == {'image_proj', 'ip_adapter'}:
        return flat
    nested: dict[str, dict] = {'image_proj': {}, 'ip_adapter': {}}
    for key, value in flat.items():
        head, _, rest = key.partition('.')
        if head in ('image_proj', 'ip_adapter_proj_model'):
            nested['image_proj'][rest] = value
        elif head in ('ip_adapter', 'double_blocks'):
            for theirs, ours in XLABS_KV.items():
                rest = rest.replace(theirs, ours)
            nested['ip_adapter'][rest.replace('processor.', '')] = value
        else:
            raise ValueError(f'not a Qwen-Image IP-Adapter: unexpected key {key}')
    return nested


class QwenImageIPAdapterMixin:
    """IP-Adapters on Qwen-Image, as diffusers' ``FluxIPAdapterMixin`` does
    them on FLUX.1: ``load_ip_adapter``, ``set_ip_adapter_scale``,
    ``unload_ip_adapter``, and the pipeline call's ``ip_adapter_image``,
    ``ip_adapter_image_embeds``, ``negative_ip_adapter_image`` and
    ``negative_ip_adapter_image_embeds`` (the negative ones used by true
    CFG; a black image when only the positive is given, as FluxPipeline).
    """

    def load_ip_adapter(
        self,
        pretrained_model_name_or_path_or_dict: Any,
        weight_name: str | list[str] | None = None,
        subfolder: str = '',
        image_encoder_pretrained_model_name_or_path: str | None = (
            'openai/clip-vit-large-patch14'
        ),
        image_encoder_dtype: torch.dtype | None = None,
    ) -> None:
        """Load one or more adapters (a file, a folder with ``weight_name``,
        or a state dict; a list for several) and, unless the pipeline has
        one, the CLIP image encoder."""
        from diffusers.models.embeddings import (
            ImageProjection,
            MultiIPAdapterImageProjection,
        )

        sources = pretrained_model_name_or_path_or_dict
        sources = sources if isinstance(sources, list) else [sources]
        names = (
            weight_name
            if isinstance(weight_name, list)
            else [weight_name] * len(sources)
        )
        states = [
            _adapter_state(source, name, subfolder)
            for source, name in zip(sources, names, strict=True)
        ]
        transformer = self.transformer
        weight = transformer.img_in.weight
        layers = list(transformer.attn_processors)
        projections, widths = [], []
        for index, state in enumerate(states):
            proj = state['image_proj']
            if not {'proj.weight', 'norm.weight'} <= set(proj):
                raise ValueError(
                    f'IP-Adapter {index}: image_proj needs proj.* and norm.* '
                    f'(a linear projection), has {sorted(proj)[:4]}'
                )
            width = proj['norm.weight'].shape[0]
            projection = ImageProjection(
                image_embed_dim=proj['proj.weight'].shape[1],
                cross_attention_dim=width,
                num_image_text_embeds=proj['proj.weight'].shape[0] // width,
            )
            renamed = {
                k.replace('proj.', 'image_embeds.', 1)
                if k.startswith('proj.')
                else k: v
                for k, v in proj.items()
            }
            projection.load_state_dict(renamed, strict=True)
            projections.append(projection.to(device=weight.device, dtype=weight.dtype))
            widths.append(width)
            found = {int(k.split('.')[0]) for k in state['ip_adapter']}
            if found != set(range(len(layers))):
                raise ValueError(
                    f'IP-Adapter {index}: has attention for {len(found)} blocks, '
                    f'this transformer has {len(layers)}'
                )
        if len(set(widths)) > 1:
            raise ValueError(f'IP-Adapters with image tokens of widths {widths}')
        processors = {}
        for position, name in enumerate(layers):
            processor = QwenImageIPAdapterAttnProcessor(
                hidden_size=transformer.inner_dim,
                cross_attention_dim=widths[0],
                num_tokens=[p.num_image_text_embeds for p in projections],
                device=weight.device,
                dtype=weight.dtype,
            )
            weights = {}
            for adapter, state in enumerate(states):
                prefix = f'{position}.'
                for key, value in state['ip_adapter'].items():
                    if key.startswith(prefix):
                        kind, param = key[len(prefix) :].split('.')
                        weights[f'{kind}.{adapter}.{param}'] = value
            processor.load_state_dict(weights, strict=True)
            processors[name] = processor
        transformer.set_attn_processor(processors)
        transformer.encoder_hid_proj = MultiIPAdapterImageProjection(projections)
        if getattr(self, 'image_encoder', None) is None and (
            image_encoder_pretrained_model_name_or_path is not None
        ):
            from transformers import CLIPVisionModelWithProjection

            encoder = CLIPVisionModelWithProjection.from_pretrained(
                image_encoder_pretrained_model_name_or_path,
                dtype=image_encoder_dtype or weight.dtype,
            )
            self.register_modules(image_encoder=encoder.to(weight.device).eval())
        if getattr(self, 'feature_extractor', None) is None:
            from transformers import CLIPImageProcessor

            size = self.image_encoder.config.image_size if self.image_encoder else 224
            self.register_modules(
                feature_extractor=CLIPImageProcessor(size=size, crop_size=size)
            )

    def set_ip_adapter_scale(self, scale: float | list) -> None:
        """One number, one per block (60), or one of those per adapter."""
        count = self.transformer.encoder_hid_proj.num_ip_adapters
        blocks = self.transformer.config.num_layers
        scales = scale if isinstance(scale, list) else [scale] * count
        if count == 1 and scales and all(isinstance(s, (int, float)) for s in scales):
            scales = [scales] if len(scales) == blocks and blocks != 1 else scales
        if len(scales) != count:
            raise ValueError(
                f'cannot assign {len(scales)} scales to {count} IP-Adapters'
            )
        per_block = [s if isinstance(s, list) else [s] * blocks for s in scales]
        if any(len(s) != blocks for s in per_block):
            raise ValueError(f'expected a list of {blocks} scales (one per block)')
        processors = [
            p
            for p in self.transformer.attn_processors.values()
            if isinstance(p, QwenImageIPAdapterAttnProcessor)
        ]
        for block, processor in enumerate(processors):
            processor.scale = [s[block] for s in per_block]

    def unload_ip_adapter(self) -> None:
        """Diffusers' processors back, the projection and image encoder gone."""
        from diffusers.models.transformers.transformer_qwenimage import (
            QwenDoubleStreamAttnProcessor2_0,
        )

        transformer = self.transformer
        transformer.set_attn_processor(
            {
                name: QwenDoubleStreamAttnProcessor2_0()
                if isinstance(p, QwenImageIPAdapterAttnProcessor)
                else p
                for name, p in transformer.attn_processors.items()
            }
        )
        transformer.encoder_hid_proj = None
        self.register_modules(image_encoder=None, feature_extractor=None)

    def encode_image(
        self, image: Any, device: Any, num_images_per_prompt: int
    ) -> torch.Tensor:
        """The CLIP image embeddings (N, D) of ``image``."""
        dtype = next(self.image_encoder.parameters()).dtype
        if not isinstance(image, torch.Tensor):
            image = self.feature_extractor(image, return_tensors='pt').pixel_values
        embeds = self.image_encoder(image.to(device=device, dtype=dtype)).image_embeds
        return embeds.repeat_interleave(num_images_per_prompt, dim=0)

    def prepare_ip_adapter_image_embeds(
        self,
        ip_adapter_image: Any,
        ip_adapter_image_embeds: list[torch.Tensor] | None,
        device: Any,
        num_images_per_prompt: int,
    ) -> list[torch.Tensor]:
        """Per adapter (B, N, D), as FluxPipeline's method of that name."""
        count = self.transformer.encoder_hid_proj.num_ip_adapters
        if ip_adapter_image_embeds is None:
            images = (
                ip_adapter_image
                if isinstance(ip_adapter_image, list)
                else [ip_adapter_image]
            )
            if len(images) != count:
                raise ValueError(
                    f'ip_adapter_image: {len(images)} images for {count} IP-Adapters'
                )
            embeds = [self.encode_image(image, device, 1)[None] for image in images]
        else:
            embeds = list(ip_adapter_image_embeds)
            if len(embeds) != count:
                raise ValueError(
                    f'ip_adapter_image_embeds: {len(embeds)} tensors for '
                    f'{count} IP-Adapters'
                )
        return [torch.cat([e] * num_images_per_prompt).to(device) for e in embeds]

    @contextlib.contextmanager
    def _image_tokens(self, tokens: dict[str, list]) -> Iterator[None]:
        """Feed ``tokens['cond']`` to the processors, and ``tokens['uncond']``
        during the pipeline's unconditional pass (its ``cache_context``)."""
        transformer = self.transformer
        current = {'name': 'cond'}
        original = transformer.cache_context

        @contextlib.contextmanager
        def named(name: str, **kwargs: Any) -> Iterator[None]:
            current['name'] = name
            with original(name, **kwargs):
                yield

        def inject(module: nn.Module, args: tuple, kwargs: dict) -> tuple:
            chosen = tokens.get(current['name'], tokens['cond'])
            attention = dict(kwargs.get('attention_kwargs') or {})
            attention['ip_hidden_states'] = chosen
            return args, dict(kwargs, attention_kwargs=attention)

        transformer.cache_context = named
        handle = transformer.register_forward_pre_hook(inject, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()
            del transformer.cache_context

    @torch.no_grad()
    def __call__(
        self,
        *args: Any,
        ip_adapter_image: Any = None,
        ip_adapter_image_embeds: list[torch.Tensor] | None = None,
        negative_ip_adapter_image: Any = None,
        negative_ip_adapter_image_embeds: list[torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``QwenImagePipeline.__call__`` with the image prompts."""
        import numpy as np

        positive = ip_adapter_image is not None or ip_adapter_image_embeds is not None
        negative = (
            negative_ip_adapter_image is not None
            or negative_ip_adapter_image_embeds is not None
        )
        if not (positive or negative):
            return super().__call__(*args, **kwargs)
        count = self.transformer.encoder_hid_proj.num_ip_adapters
        side = self.default_sample_size * self.vae_scale_factor
        black = [
            np.zeros(
                (kwargs.get('width') or side, kwargs.get('height') or side, 3),
                dtype=np.uint8,
            )
        ] * count
        if not negative:
            negative_ip_adapter_image = black
        elif not positive:
            ip_adapter_image = black
        device = self._execution_device
        per_prompt = kwargs.get('num_images_per_prompt', 1)
        project = self.transformer.encoder_hid_proj
        tokens = {
            'cond': project(
                self.prepare_ip_adapter_image_embeds(
                    ip_adapter_image, ip_adapter_image_embeds, device, per_prompt
                )
            ),
            'uncond': project(
                self.prepare_ip_adapter_image_embeds(
                    negative_ip_adapter_image,
                    negative_ip_adapter_image_embeds,
                    device,
                    per_prompt,
                )
            ),
        }
        with self._image_tokens(tokens):
            return super().__call__(*args, **kwargs)


class QwenImageIPAdapterPipeline(QwenImageIPAdapterMixin, QwenImagePipeline):
    """``QwenImagePipeline`` with IP-Adapters (:class:`QwenImageIPAdapterMixin`)
    and the image encoder among its components."""

    _optional_components = ['image_encoder', 'feature_extractor']

    def __init__(
        self,
        scheduler: Any,
        vae: Any,
        text_encoder: Any,
        tokenizer: Any,
        transformer: Any,
        image_encoder: Any = None,
        feature_extractor: Any = None,
    ) -> None:
        super().__init__(scheduler, vae, text_encoder, tokenizer, transformer)
        self.register_modules(
            image_encoder=image_encoder, feature_extractor=feature_extractor
        )


def with_ip_adapters(pipe: Any) -> Any:
    """``pipe`` (a ``QwenImagePipeline``) as a
    :class:`QwenImageIPAdapterPipeline`: the same object, its class swapped."""
    if isinstance(pipe, QwenImageIPAdapterPipeline):
        return pipe
    if type(pipe) is not QwenImagePipeline:
        raise UserError(
            f'load_ip_adapter: takes a QwenImagePipeline, got {type(pipe).__name__} '
            "(diffusers' own pipelines have their own load_ip_adapter)"
        )
    pipe.__class__ = QwenImageIPAdapterPipeline
    for name in ('image_encoder', 'feature_extractor'):
        if getattr(pipe, name, None) is None:
            pipe.register_modules(**{name: None})
    return pipe


def load_ip_adapter(
    pipe: Any,
    file: Any,
    scale: float | list = 1.0,
    image_encoder: str | None = 'openai/clip-vit-large-patch14',
    image_encoder_dtype: torch.dtype | None = None,
) -> Any:
    """Load a Qwen-Image IP-Adapter (this kit's file, a state dict, or a
    list of those) into diffusers' ``QwenImagePipeline`` ``pipe``, which then
    takes ``ip_adapter_image=`` (or ``ip_adapter_image_embeds=``) and has
    ``set_ip_adapter_scale`` and ``unload_ip_adapter``. ``image_encoder``:
    the CLIP vision model's folder or Hub id, unless ``pipe`` has one.
    Returns ``pipe`` (the same object)."""
    pipe = with_ip_adapters(pipe)
    pipe.load_ip_adapter(
        file,
        image_encoder_pretrained_model_name_or_path=image_encoder,
        image_encoder_dtype=image_encoder_dtype,
    )
    pipe.set_ip_adapter_scale(scale)
    return pipe


# --- the family's roles ----------------------------------------------------------


class QwenImageGeneration(FluxGeneration):
    """``QwenImagePipeline`` with the kit's loader: true CFG
    (``true_cfg_scale`` 4 against the negative prompt ``' '``, the
    pipeline's documented call), the null image a black one (as FLUX)."""

    family_name = 'QwenImage'
    pipeline_class = 'QwenImagePipeline'
    controlnet_pipeline_class = ''  # the kit's loader is on QwenImagePipeline only
    controlnet_model_class = ''
    generation_defaults = dict(
        steps=50, guidance_scale=None, negative_prompt=' ', true_cfg_scale=4.0
    )

    @classmethod
    def load_ip_adapter(cls, pipe: Any, nested: list[dict[str, dict]]) -> None:
        with_ip_adapters(pipe).load_ip_adapter(
            nested, image_encoder_pretrained_model_name_or_path=None
        )

    @classmethod
    def live_pipeline_class(cls) -> type:
        return QwenImageIPAdapterPipeline


@MODELS.register_module()
class QwenImage(FluxAdapterMixin, DiffusionFamily):
    """Qwen-Image, with the kit's IP-Adapter in FLUX.1's form.

    Text: ``QwenImagePipeline.encode_prompt`` (the last hidden states of
    Qwen2.5-VL on the prompt in its system template, the template's first 34
    tokens dropped), padded with zeros to ``max_sequence_length`` under its
    mask (a fixed width an embedding cache can hold; the masked tokens change
    nothing). Latents: the 3D VAE on one frame, normalised per channel with
    its ``latents_mean``/``latents_std`` as the pipeline does. Objective:
    rectified flow with uniform timesteps and an unweighted loss, as
    :class:`Flux`. Adapter: :class:`QwenImageIPAdapterAttnProcessor` on all
    60 blocks.

    Args:
        pretrained_model_name_or_path: A diffusers folder or Hub id
            (``Qwen/Qwen-Image``).
        objective: Overrides of :class:`RectifiedFlow`'s settings.
        max_sequence_length: Text tokens (512, as the pipeline's call).
    """

    generation = QwenImageGeneration
    components = dict(
        transformer=('diffusers', 'QwenImageTransformer2DModel'),
        vae=('diffusers', 'AutoencoderKLQwenImage'),
        text_encoder=('transformers', 'Qwen2_5_VLForConditionalGeneration'),
        tokenizer=('transformers', 'Qwen2Tokenizer'),
    )
    patch_embedding = 'img_in'

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        objective: dict | None = None,
        max_sequence_length: int = MAX_SEQUENCE_LENGTH,
    ) -> None:
        self.max_sequence_length = max_sequence_length
        super().__init__(pretrained_model_name_or_path, objective)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** len(self.vae.temperal_downsample)

    def latent_distribution(
        self, pixels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE's latent mean and std (B, C, h, w) of one frame."""
        frames = pixels.to(self.vae.dtype)[:, :, None]  # (B, 3, 1, H, W)
        distribution = self.vae.encode(frames).latent_dist
        return distribution.mean[:, :, 0], distribution.std[:, :, 0]

    def scale_latents(self, sample: torch.Tensor) -> torch.Tensor:
        """``(x - latents_mean) / latents_std`` per channel (the pipeline's
        decode inverts it)."""
        config = self.vae.config
        shape = (1, config.z_dim, 1, 1)
        mean = torch.tensor(config.latents_mean).view(shape).to(sample)
        std = torch.tensor(config.latents_std).view(shape).to(sample)
        return (sample - mean) / std

    def encode_prompt(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``prompt_embeds`` (B, max_sequence_length, D) and
        ``prompt_embeds_mask`` (B, max_sequence_length), as the pipeline
        encodes them, zero-padded."""
        # The pipeline's _get_qwen_prompt_embeds, with the padding on the
        # right: its valid tokens are then a prefix, so slicing replaces its
        # boolean indexing (whose data-dependent shapes fake tensors, as in
        # the memory estimate, cannot follow).
        pipe = self.text_pipeline()
        drop = pipe.prompt_template_encode_start_idx
        tokens = self.tokenizer(
            [pipe.prompt_template_encode.format(text) for text in texts],
            max_length=pipe.tokenizer_max_length + drop,
            padding=True,
            padding_side='right',
            truncation=True,
            return_tensors='pt',
        ).to(self.text_encoder.device)
        states = self.text_encoder(
            input_ids=tokens.input_ids,
            attention_mask=tokens.attention_mask,
            output_hidden_states=True,
        ).hidden_states[-1]
        mask = tokens.attention_mask[:, drop:][:, : self.max_sequence_length]
        embeds = states[:, drop:][:, : self.max_sequence_length] * mask[..., None]
        embeds = embeds.to(self.text_encoder.dtype)
        batch, length, width = embeds.shape
        pad = self.max_sequence_length - length
        return dict(
            prompt_embeds=torch.cat([embeds, embeds.new_zeros(batch, pad, width)], 1),
            prompt_embeds_mask=torch.cat([mask, mask.new_zeros(batch, pad)], 1),
        )

    @classmethod
    def adapter_layers(cls, denoiser: nn.Module) -> list[str]:
        """Every block (all are joint-attention blocks)."""
        return list(denoiser.attn_processors)

    @classmethod
    def adapter_processor(cls) -> type:
        return QwenImageIPAdapterAttnProcessor

    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        conditions: dict[str, torch.Tensor],
        image_tokens: torch.Tensor,
    ) -> torch.Tensor:
        """The velocity (B, C, h, w), as QwenImagePipeline calls the
        transformer: 2×2-packed latents of one frame, their shape for RoPE,
        σ, the text mask; the image tokens (B, N, D) reach every block."""
        from diffusers import QwenImagePipeline

        batch, channels, height, width = noisy.shape
        packed = QwenImagePipeline._pack_latents(noisy, batch, channels, height, width)
        prediction = self.transformer(
            hidden_states=packed,
            timestep=timesteps / 1000,
            encoder_hidden_states=conditions['prompt_embeds'],
            encoder_hidden_states_mask=conditions['prompt_embeds_mask'],
            img_shapes=[[(1, height // 2, width // 2)]] * batch,
            attention_kwargs=dict(ip_hidden_states=[image_tokens]),
            return_dict=False,
        )[0]
        scale = self.vae_scale_factor
        return QwenImagePipeline._unpack_latents(
            prediction, height * scale, width * scale, scale
        )[:, :, 0]


# Qwen/Qwen-Image, scheduler/: exponential time shift by image size.
QWEN_IMAGE_SCHEDULER = dict(
    _class_name='FlowMatchEulerDiscreteScheduler',
    num_train_timesteps=1000,
    shift=1.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=0.9,
    base_image_seq_len=256,
    max_image_seq_len=8192,
    shift_terminal=0.02,
    time_shift_type='exponential',
)


# --- random architectures ----------------------------------------------------


def qwen_text_config(text: dict, vision: dict) -> dict:
    """A ``Qwen2_5_VLConfig``'s fields (the pipeline's text encoder is the
    whole vision-language model; only its language model runs)."""
    return dict(text_config=text, vision_config=vision)


@ARCHITECTURES.register_module(name='qwen_image')
def qwen_image() -> dict:
    """Qwen-Image: 20.4B transformer (60 blocks of 24 × 128, 3584-d text),
    Qwen2.5-VL-7B-Instruct, the 16-channel 3D VAE."""
    return dict(
        family='QwenImage',
        paired_encoder='clip-vit-large-patch14',
        resolution=1024,
        transformer=dict(
            patch_size=2,
            in_channels=64,
            out_channels=16,
            num_layers=60,
            attention_head_dim=128,
            num_attention_heads=24,
            joint_attention_dim=3584,
            axes_dims_rope=(16, 56, 56),
        ),
        vae=dict(base_dim=96, z_dim=16),  # the class's defaults are Qwen-Image's
        text_encoder=qwen_text_config(
            dict(
                vocab_size=152064,
                hidden_size=3584,
                intermediate_size=18944,
                num_hidden_layers=28,
                num_attention_heads=28,
                num_key_value_heads=4,
                max_position_embeddings=128000,
                rms_norm_eps=1e-6,
                rope_parameters=dict(
                    rope_type='default', mrope_section=[16, 24, 24], rope_theta=1e6
                ),
            ),
            dict(
                depth=32,
                hidden_size=1280,
                intermediate_size=3420,
                num_heads=16,
                out_hidden_size=3584,
                fullatt_block_indexes=[7, 15, 23, 31],
            ),
        ),
        tokenizer=dict(),
        scheduler=QWEN_IMAGE_SCHEDULER,
    )


@ARCHITECTURES.register_module(name='tiny_qwen_image')
def tiny_qwen_image() -> dict:
    """Qwen-Image-shaped, tiny: joint-attention blocks with RMS-normed Q/K
    and RoPE over (frame, h, w), a 2-layer Qwen2.5-VL (multimodal RoPE, a
    1-block vision tower that text never runs), a 3D VAE of one level."""
    from ..random_models.tokenizers import TINY_QWEN_SPECIALS, TINY_QWEN_VOCAB

    pad, _, end = TINY_QWEN_SPECIALS
    return dict(
        family='QwenImage',
        paired_encoder='tiny_clip_vision',
        resolution=64,
        family_settings=dict(max_sequence_length=32),
        transformer=dict(
            patch_size=2,
            in_channels=16,  # 4 latent channels, packed 2×2
            out_channels=4,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=40,  # the text encoder's width
            axes_dims_rope=(4, 6, 6),
        ),
        vae=dict(
            base_dim=8,
            z_dim=4,
            dim_mult=[1, 2],
            num_res_blocks=1,
            temperal_downsample=[False],
            latents_mean=[0.1, -0.2, 0.3, 0.0],
            latents_std=[1.5, 0.8, 1.2, 2.0],
        ),
        text_encoder=qwen_text_config(
            dict(
                vocab_size=TINY_QWEN_VOCAB,
                hidden_size=40,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=1,
                max_position_embeddings=2048,
                rope_parameters=dict(
                    rope_type='default', mrope_section=[2, 4, 4], rope_theta=1e6
                ),
                bos_token_id=pad,
                eos_token_id=end,
                pad_token_id=pad,
            ),
            dict(
                depth=1,
                hidden_size=16,
                intermediate_size=32,
                num_heads=2,
                out_hidden_size=40,
                fullatt_block_indexes=[0],
            ),
        ),
        tokenizer=dict(),
        scheduler=QWEN_IMAGE_SCHEDULER,
    )


FAMILY = Family(
    'qwen_image', 'Qwen-Image', QwenImage, architecture='qwen_image', position=7
)
