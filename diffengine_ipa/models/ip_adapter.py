"""IP-Adapter (Ye et al. 2023, arXiv 2308.06721) as one MMEngine model.

A frozen Stable Diffusion model and CLIP image encoder; trainable: an image
projection (CLIP embedding → N tokens) and, beside every UNet cross-attention
layer, K/V projections that read those tokens with the same query
(``out = text_attn + scale · image_attn``).
"""
import contextlib
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from ..errors import CheckpointError, UserError
from ..registry import MODELS
from .fingerprint import fingerprint_modules
from .generation import generate, live_pipeline
from .model_sources import load_component, load_schedulers, resolve_file
from .training_draws import draw_training_randomness
from .unet_surgery import install_ip_adapter, ip_adapter_key_map

__all__ = ['IPAdapter', 'condition_drops', 'expected_adapter']


def condition_drops(u: torch.Tensor, text_rate: float, image_rate: float,
                    both_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Which samples lose their text, image or both (for CFG), from one
    uniform draw ``u`` (B, ) per sample.

    The three cases are exclusive, as in the reference ``tutorial_train.py``.

    Returns:
        ``(drop_text, drop_image)``: boolean masks of shape (B, ).
    """
    image_only = u < image_rate
    text_only = (u >= image_rate) & (u < image_rate + text_rate)
    both = (u >= image_rate + text_rate) & (
        u < image_rate + text_rate + both_rate)
    return text_only | both, image_only | both


def expected_adapter(projection: Any, unet: Any,
                     image_encoder: Any) -> dict[str, Any]:
    """The variant, widths, tokens and layers an adapter for these modules
    has; ``projection`` is the projection module or its class."""
    from .unet_surgery import cross_attention_layers
    encoder = image_encoder.config
    plus = projection.image_features != 'image_embeds'
    tokens = getattr(projection, 'num_tokens', None)
    return dict(
        variant=projection.variant,
        cross_attention_dim=unet.config.cross_attention_dim,
        image_embed_dim=encoder.hidden_size if plus else encoder.projection_dim,
        tokens=tokens if isinstance(tokens, int) else None,
        layers=len(cross_attention_layers(unet)))


def _per_sample(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B, ) mask shaped to broadcast over ``like`` (B, ...)."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _sample_indices(data_samples: Any) -> list[int] | None:
    """The batch's dataset indices (``sample_idx``), when the data has them."""
    if isinstance(data_samples, dict) and 'sample_idx' in data_samples:
        return [int(i) for i in data_samples['sample_idx']]
    return None


def _drop_missing_frozen_keys(model: 'IPAdapter', incompatible: Any) -> None:
    """Load-state-dict post hook: checkpoints hold the adapter only, so the
    frozen weights are not 'missing'; a missing adapter weight still is."""
    adapter = model.adapter_parameter_names()
    incompatible.missing_keys[:] = [
        key for key in incompatible.missing_keys
        if any(key == name or key.endswith('.' + name) for name in adapter)
    ]


@MODELS.register_module()
class IPAdapter(BaseModel):
    """Train an IP-Adapter on a frozen Stable Diffusion model.

    Args:
        pretrained_model_name_or_path: The base model: a diffusers folder or
            Hub id (unet/, vae/, text_encoder/, tokenizer/, scheduler/), or
            ``random:<family>`` for an architecture with random weights.
        image_encoder_path: A ``CLIPVisionModelWithProjection`` folder or Hub
            id (or ``random:<family>``).
        image_encoder_subfolder: Its folder inside that repo or folder, e.g.
            ``sdxl_models/image_encoder`` of ``h94/IP-Adapter``.
        prompt_encoder: Config of the text conditioning component; it picks
            the Stable Diffusion family.
        image_projection: Config of the trainable projection; its widths are
            filled in from the loaded encoder and UNet.
        pretrained_ip_adapter: Start from a published adapter: a local
            ``.bin``/``.safetensors`` in the official layout, or a Hub file as
            ``owner/repo/path`` (``h94/IP-Adapter/models/ip-adapter_sd15.safetensors``).
            A file that does not fit stops with one line.
        text_drop_rate: Probability that a sample's prompt becomes ``""``.
        image_drop_rate: Probability that its image embedding becomes zero.
        both_drop_rate: Probability that both are dropped.
        noise_offset: Offset noise strength (0 disables it).
        gradient_checkpointing: Recompute UNet activations in the backward
            pass to save memory.
        generation_cfg: How ``mode='predict'`` (validation, test) generates:
            ``steps``, ``guidance_scale``, ``negative_prompt``, ``height``,
            ``width``.
        frozen_dtype: ``'bf16'`` or ``'fp16'`` stores the frozen weights in
            half precision (the adapter stays fp32); needs mixed precision
            (``--amp``). An fp32-only VAE (``force_upcast``) stays fp32.
        channels_last: Run the UNet in channels-last memory format.
        compile_unet: ``torch.compile`` the UNet (in place; names unchanged).
        adapter_only_state_dict: ``state_dict()`` holds the adapter only
            (checkpoints are adapter-only either way, see
            ``AdapterCheckpointHook``). FSDP needs every weight it shards in
            the state dict: its strategy config turns this off.
        data_preprocessor: Config of the data preprocessor.
        init_cfg: MMEngine weight-init config (unused by default).
    """

    def __init__(self,
                 pretrained_model_name_or_path: str,
                 image_encoder_path: str,
                 image_encoder_subfolder: str | None = None,
                 prompt_encoder: dict = dict(type='SD15PromptEncoder'),
                 image_projection: dict = dict(
                     type='IPAdapterImageProjection', num_tokens=4),
                 pretrained_ip_adapter: str | None = None,
                 text_drop_rate: float = 0.05,
                 image_drop_rate: float = 0.05,
                 both_drop_rate: float = 0.05,
                 noise_offset: float = 0.0,
                 gradient_checkpointing: bool = False,
                 generation_cfg: dict | None = None,
                 frozen_dtype: str | None = None,
                 channels_last: bool = False,
                 compile_unet: bool = False,
                 adapter_only_state_dict: bool = True,
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPVisionModelWithProjection

        if data_preprocessor is None:
            data_preprocessor = dict(type='IPAdapterDataPreprocessor')
        super().__init__(
            data_preprocessor=MODELS.build(data_preprocessor),
            init_cfg=init_cfg)
        rates = (text_drop_rate, image_drop_rate, both_drop_rate)
        if min(rates) < 0 or sum(rates) > 1:
            raise UserError('model.text_drop_rate + image_drop_rate + '
                            f'both_drop_rate must be in [0, 1], got {rates}')
        self.drop_rates = dict(
            text_rate=text_drop_rate,
            image_rate=image_drop_rate,
            both_rate=both_drop_rate)
        self.noise_offset = noise_offset
        self.generation_cfg = dict(
            steps=30,
            guidance_scale=7.5,
            negative_prompt='monochrome, lowres, bad anatomy, worst quality, '
            'low quality',
            height=None,
            width=None)
        self.generation_cfg.update(generation_cfg or {})
        self.sources = dict(
            pretrained_model_name_or_path=pretrained_model_name_or_path,
            image_encoder_path=image_encoder_path,
            image_encoder_subfolder=image_encoder_subfolder)

        base = pretrained_model_name_or_path
        self.vae = load_component(AutoencoderKL, base, 'vae')
        self.unet = load_component(UNet2DConditionModel, base, 'unet')
        self.noise_scheduler, self.inference_scheduler = load_schedulers(base)
        self.prompt_encoder = MODELS.build(
            prompt_encoder,
            default_args=dict(pretrained_model_name_or_path=base))
        self.image_encoder = load_component(
            CLIPVisionModelWithProjection,
            image_encoder_path,
            image_encoder_subfolder,
            field='model.image_encoder_path',
            component='image_encoder')
        self.requires_grad_(False)  # all frozen; only what follows trains

        encoder = self.image_encoder.config
        features = MODELS.get(image_projection['type']).image_features
        self.image_projection = MODELS.build(
            image_projection,
            default_args=dict(
                image_embed_dim=(encoder.projection_dim if features
                                 == 'image_embeds' else encoder.hidden_size),
                cross_attention_dim=self.unet.config.cross_attention_dim))
        install_ip_adapter(self.unet, self.image_projection.num_tokens)
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.frozen_dtype = frozen_dtype
        if frozen_dtype:
            self._cast_frozen_weights(frozen_dtype)
        self.adapter_only_state_dict = adapter_only_state_dict
        self.channels_last = channels_last
        if channels_last:
            self.unet.to(memory_format=torch.channels_last)
        if compile_unet:
            self.unet.compile()
        self._empty_prompt: dict | None = None
        self._null_image: torch.Tensor | None = None
        self._fingerprint: str | None = None
        self.register_load_state_dict_post_hook(_drop_missing_frozen_keys)
        if pretrained_ip_adapter:
            self.load_pretrained_ip_adapter(pretrained_ip_adapter)

    def load_pretrained_ip_adapter(self, spec: str) -> None:
        """Initialise the adapter from an official-layout file (local or Hub)."""
        from ..adapter_files import (
            compare_adapter,
            describe_official,
            load_weights_file,
            to_official,
            validate_official,
        )
        path = resolve_file(spec, 'model.pretrained_ip_adapter')
        contents, _ = load_weights_file(path)
        state = to_official(contents, path)
        validate_official(state, path)
        compare_adapter(describe_official(state), self.expected_adapter(), path)
        self.load_official_state_dict(state, path)

    def expected_adapter(self) -> dict[str, Any]:
        """What an adapter file must be to fit this model (see
        :func:`diffengine_ipa.adapter_files.compare_adapter`)."""
        return expected_adapter(self.image_projection, self.unet,
                                self.image_encoder)

    def forward(self,
                inputs: dict,
                data_samples: Any | None = None,
                mode: str = 'loss') -> dict[str, torch.Tensor]:
        """Noise-prediction loss (``mode='loss'``), or generated images
        (``mode='predict'``, see :meth:`predict`).

        Args:
            inputs: ``pixel_values`` (B, 3, H, W) in [-1, 1] for the VAE,
                ``clip_pixel_values`` (B, 3, S, S) for the image encoder,
                ``text``, a list of B prompts, and for SDXL ``time_ids``
                (B, 6).
        """
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode != 'loss':
            raise ValueError(f"IPAdapter.forward has no mode {mode!r}; "
                             "use 'loss' or 'predict'")
        self._check_cache_fingerprint(data_samples)
        if self.frozen_dtype and not torch.is_autocast_enabled(self.device.type):
            raise UserError(f'model.frozen_dtype={self.frozen_dtype!r} needs '
                            'mixed precision: train with --amp')
        scheduler = self.noise_scheduler
        with torch.no_grad():
            mean, std = self.latent_moments(inputs)  # (B, 4, H/8, W/8)
            draws = draw_training_randomness(
                mean.shape, scheduler.config.num_train_timesteps,
                _sample_indices(data_samples), mean.device,
                with_offset=bool(self.noise_offset))
            drop_text, drop_image = condition_drops(draws.drop,
                                                    **self.drop_rates)
            latents = (mean + std * draws.latent_eps.to(mean.dtype)
                       ) * self.vae.config.scaling_factor
            text_states, added_cond = self.text_conditions(
                inputs, drop_text)  # (B, L, D_ctx)
            image_features = self.image_features(inputs, drop_image)  # (B, D_img)

        noise = draws.noise.to(latents.dtype)
        if self.noise_offset:
            noise += self.noise_offset * draws.offset.to(latents.dtype)
        timesteps = draws.timesteps
        noisy_latents = scheduler.add_noise(latents, noise, timesteps)
        if self.channels_last:
            noisy_latents = noisy_latents.contiguous(
                memory_format=torch.channels_last)

        ip_tokens = self.image_projection(image_features)  # (B, N, D_ctx)
        prediction = self.unet(
            noisy_latents,
            timesteps,
            encoder_hidden_states=(text_states, [ip_tokens]),
            added_cond_kwargs=added_cond).sample
        if scheduler.config.prediction_type == 'v_prediction':
            target = scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        return {'loss': F.mse_loss(prediction.float(), target.float())}

    @property
    def device(self) -> torch.device:
        return self.unet.device

    # --- the three conditions, from cached tensors or computed now ---------

    def latent_moments(self, inputs: dict
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE latent distribution's mean and std: cached
        (``latent_mean``/``latent_std``) or of ``pixel_values`` (the same
        latents either way once sampled)."""
        if 'latent_mean' in inputs:
            return inputs['latent_mean'], inputs['latent_std']
        return self.latent_distribution(inputs['pixel_values'])

    def text_conditions(self, inputs: dict, drop_text: torch.Tensor
                        ) -> tuple[torch.Tensor, dict | None]:
        """UNet text conditions; dropped samples get the empty prompt's."""
        if 'text_states' not in inputs:
            texts = ['' if drop else text
                     for text, drop in zip(inputs['text'], drop_text, strict=True)]
            encodings = self.prompt_encoder(texts)
        else:
            empty = self.empty_prompt_encodings()
            encodings = {
                key: torch.where(_per_sample(drop_text, value), value,
                                 inputs[key].to(value.dtype))
                for key, value in empty.items()
            }
        return self.prompt_encoder.unet_conditions(encodings,
                                                   inputs.get('time_ids'))

    def image_features(self, inputs: dict,
                       drop_image: torch.Tensor) -> torch.Tensor:
        """What the projection reads (cached ``image_features`` or encoded
        now); a dropped sample gets :meth:`null_image_features`."""
        features = inputs.get('image_features')
        if features is None:
            features = self.encode_image(inputs['clip_pixel_values'])
        null = self.null_image_features().to(features.dtype)
        return torch.where(_per_sample(drop_image, features), null, features)

    def null_image_features(self) -> torch.Tensor:
        """The features of a dropped image (1, ...): zero for the base
        projection, the encoder's features of an all-zero pixel input for
        Plus; computed once."""
        if self._null_image is None:
            size = self.image_encoder.config.image_size
            zeros = torch.zeros(1, 3, size, size, device=self.device)
            with torch.no_grad():
                features = self.encode_image(zeros)
            if self.image_projection.null_image == 'zero_features':
                features = torch.zeros_like(features)
            self._null_image = features
        return self._null_image

    def empty_prompt_encodings(self) -> dict[str, torch.Tensor]:
        """The prompt encoder's output for ``""`` (1, ...), computed once."""
        if self._empty_prompt is None:
            with torch.no_grad():
                self._empty_prompt = self.prompt_encoder([''])
        return self._empty_prompt

    def encoder_fingerprint(self) -> str:
        """Identity of the frozen encoders' weights (for embedding caches)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint_modules(dict(
                vae=self.vae, prompt_encoder=self.prompt_encoder,
                image_encoder=self.image_encoder),
                extra=f'image_features={self.image_projection.image_features}')
        return self._fingerprint

    def _check_cache_fingerprint(self, data_samples: Any) -> None:
        """Refuse cached inputs that other encoders made."""
        if not isinstance(data_samples, dict) or (
                'cache_fingerprint' not in data_samples):
            return
        ours = self.encoder_fingerprint()
        theirs = set(data_samples['cache_fingerprint'])
        if theirs != {ours}:
            raise UserError(
                f'the embedding cache was made with other frozen models '
                f'(fingerprint {sorted(theirs)[0][:12]}, this model '
                f'{ours[:12]}): rebuild it with tools/cache_embeddings.py')

    def _cast_frozen_weights(self, name: str) -> None:
        dtype = dict(bf16=torch.bfloat16, fp16=torch.float16).get(name)
        if dtype is None:
            raise UserError(f"model.frozen_dtype must be 'bf16' or 'fp16', "
                            f'got {name!r}')
        keep_fp32 = self.vae.config.get('force_upcast', False)
        for module_name, module in self.named_children():
            if module_name == 'vae' and keep_fp32:
                continue
            for param in module.parameters():
                if not param.requires_grad:
                    param.data = param.data.to(dtype)

    def predict(self, inputs: dict, data_samples: Any = None) -> list[dict]:
        """Generate one image per sample with the adapter as it is now.

        Args:
            inputs: ``img`` (reference PIL images), ``prompt``, ``scale`` and
                ``seed``, one of each per sample (see ``IPAdapterEvalDataset``).
            data_samples: Per-sample metadata, passed through.

        Returns:
            One dict per sample: its metadata plus ``reference``, ``prompt``,
            ``scale``, ``seed`` and the generated ``image``.
        """
        cfg = self.generation_cfg
        count = len(inputs['prompt'])
        if isinstance(data_samples, dict):  # collated: one list per key
            samples = [{k: v[i] for k, v in data_samples.items()}
                       for i in range(count)]
        else:
            samples = data_samples or [{} for _ in range(count)]
        outputs = []
        with live_pipeline(self) as pipe:
            for reference, prompt, scale, seed, meta in zip(
                    inputs['img'], inputs['prompt'], inputs['scale'],
                    inputs['seed'], samples, strict=True):
                (image, ) = generate(
                    pipe, reference, prompt, cfg['negative_prompt'],
                    float(scale), cfg['steps'], cfg['guidance_scale'],
                    int(seed), 1, cfg['height'], cfg['width'])
                outputs.append(dict(meta, reference=reference, prompt=prompt,
                                    scale=float(scale), seed=int(seed),
                                    image=image))
        return outputs

    def latent_distribution(self, pixels: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE's latent mean and std of ``pixels``; in fp32 when the VAE
        asks for it (SDXL's overflows in fp16), even under mixed precision."""
        fp32 = self.vae.config.get('force_upcast', False)
        guard = (torch.autocast(pixels.device.type, enabled=False)
                 if fp32 else contextlib.nullcontext())
        with guard:
            distribution = self.vae.encode(pixels.to(
                self.vae.dtype)).latent_dist
        return distribution.mean, distribution.std

    def encode_image(self, clip_pixel_values: torch.Tensor) -> torch.Tensor:
        """The image features the projection reads, of preprocessed reference
        images: ``image_embeds`` (B, D_img), or the penultimate layer's hidden
        states (B, 1 + patches, D_hidden) for Plus."""
        expected = self.image_encoder.config.image_size
        if clip_pixel_values.shape[-1] != expected:
            raise UserError(
                f'the image encoder takes {expected} px images but the data '
                f'pipeline gives {clip_pixel_values.shape[-1]} px; set '
                f'CLIPImageProcess(size={expected}) in the pipeline')
        pixels = clip_pixel_values.to(self.image_encoder.dtype)
        if self.image_projection.image_features == 'image_embeds':
            return self.image_encoder(pixels).image_embeds
        return self.image_encoder(pixels, output_hidden_states=True).hidden_states[-2]

    # --- the adapter as the model's state -----------------------------------

    def adapter_parameter_names(self) -> set[str]:
        """Names of the trainable (adapter) parameters."""
        return {n for n, p in self.named_parameters() if p.requires_grad}

    def state_dict(self,
                   destination: dict | None = None,
                   prefix: str = '',
                   keep_vars: bool = False) -> dict[str, torch.Tensor]:
        """The adapter's weights only (unless ``adapter_only_state_dict`` is
        off).

        The frozen base comes from the model sources, so checkpoints stay
        small (~86 MB for SD1.5) and ``load_state_dict`` accepts them.
        """
        if not self.adapter_only_state_dict:
            return super().state_dict(destination=destination, prefix=prefix,
                                      keep_vars=keep_vars)
        full = super().state_dict(prefix=prefix, keep_vars=keep_vars)
        adapter = {prefix + name for name in self.adapter_parameter_names()}
        if destination is None:
            destination = OrderedDict()
        for key, value in full.items():
            if key in adapter:
                destination[key] = value
        return destination

    def official_key_map(self) -> dict[str, str]:
        """Our state-dict keys → the official IP-Adapter file's keys."""
        keys = self.image_projection.official_key_map('image_projection.')
        keys.update(ip_adapter_key_map(self.unet, 'unet.'))
        return keys

    def adapter_metadata(self) -> dict[str, Any]:
        """What a converter needs to know to write the official file."""
        return dict(
            key_map=self.official_key_map(),
            variant=self.image_projection.variant,
            num_tokens=self.image_projection.num_tokens,
            image_embed_dim=self.image_encoder.config.projection_dim,
            cross_attention_dim=self.unet.config.cross_attention_dim,
            pipeline_class=self.prompt_encoder.pipeline_class,
            **self.sources)

    def load_official_state_dict(self, state: dict[str, torch.Tensor],
                                 source: str = 'adapter') -> None:
        """Load an official-layout adapter (flat keys) into this model.

        Strict: a missing, extra or mis-shaped weight stops with one line.
        """
        current = self.state_dict()
        ours: dict[str, list[str]] = {}
        for key, official in self.official_key_map().items():
            ours.setdefault(official, []).append(key)
        missing = sorted(set(ours) - set(state))
        extra = sorted(set(state) - set(ours))
        if missing or extra:
            raise CheckpointError(
                f'{source}: does not fit this model: '
                + (f'missing {missing[0]} ({len(missing)} in all)' if missing
                   else f'unexpected {extra[0]} ({len(extra)} in all)'))
        weights = {}
        for official, keys in ours.items():
            shapes = [current[key].shape for key in keys]
            expected = (sum(shape[0] for shape in shapes), *shapes[0][1:])
            if tuple(state[official].shape) != tuple(expected):
                raise CheckpointError(
                    f'{source}: {official} has shape '
                    f'{tuple(state[official].shape)}, this model needs '
                    f'{tuple(expected)}')
            parts = state[official].split([shape[0] for shape in shapes])
            weights.update(zip(keys, parts, strict=True))
        self.load_state_dict(weights, strict=True)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """The adapter in the official flat layout (``image_proj.*``,
        ``ip_adapter.<i>.*``), detached copies on the CPU."""
        from ..adapter_files import rename_to_official
        weights = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        return rename_to_official(weights, self.official_key_map())
