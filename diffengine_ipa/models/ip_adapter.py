"""IP-Adapter (Ye et al. 2023, arXiv 2308.06721) as one MMEngine model.

A frozen text-to-image model (its *family*: SD1.5, SDXL, SD3, FLUX.1) and a
frozen image encoder; trainable: an image projection (image features → N
tokens) and, beside the denoiser's attention layers, K/V projections that
read those tokens with the same query (``out = text_attn + scale ·
image_attn``). The family owns everything that differs between kinds of
model; this class is the recipe they share.
"""

from collections import OrderedDict
from typing import Any

import torch
from mmengine.model import BaseModel

from ..dtypes import to_dtype
from ..errors import UserError
from ..registry import MODELS
from .compilation import compile_denoiser as compile_denoiser_in_place
from .fingerprint import fingerprint_modules
from .generation import check_true_cfg, live_pipeline
from .image_encoders import image_encoder_config
from .quantization import check_quantize, quantize_parts
from .training_draws import draw_fixed_randomness, draw_training_randomness

__all__ = ['IPAdapter', 'condition_drops']


def condition_drops(
    u: torch.Tensor, text_rate: float, image_rate: float, both_rate: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which samples lose their text, image or both (for CFG), from one
    uniform draw ``u`` (B, ) per sample.

    The three cases are exclusive, as in the reference ``tutorial_train.py``.

    Returns:
        ``(drop_text, drop_image)``: boolean masks of shape (B, ).
    """
    image_only = u < image_rate
    text_only = (u >= image_rate) & (u < image_rate + text_rate)
    both = (u >= image_rate + text_rate) & (u < image_rate + text_rate + both_rate)
    return text_only | both, image_only | both


def _per_sample(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B, ) mask shaped to broadcast over ``like`` (B, ...)."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _map(features: Any, fn: Any) -> Any:
    """``fn`` of the features: a tensor, or each of a dict's (FaceID)."""
    if isinstance(features, dict):
        return {key: fn(value) for key, value in features.items()}
    return fn(features)


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
        key
        for key in incompatible.missing_keys
        if any(key == name or key.endswith('.' + name) for name in adapter)
    ]


@MODELS.register_module()
class IPAdapter(BaseModel):
    """Train an IP-Adapter on a frozen text-to-image model.

    Args:
        pretrained_model_name_or_path: The base model: a diffusers folder or
            Hub id, or ``random:<architecture>`` (random weights).
        image_encoder: The image encoder's config entry, e.g.
            ``dict(type='CLIPImageEncoder', pretrained_model_name_or_path=
            'openai/clip-vit-large-patch14', subfolder=None)`` (a bare path:
            the type its config names); its preprocessing comes from the
            encoder (see ``image_encoders``).
        family: The model family's config entry (``SD15``, ``SDXL``, ``SD3``,
            ``Flux``, with their settings); it decides everything that
            differs between kinds of model.
        image_projection: Config of the trainable projection (default: the
            one of the family's published adapters); its widths are filled in
            from the loaded encoder and family.
        pretrained_ip_adapter: Start from a published adapter: a local
            ``.bin``/``.safetensors`` in the family's official layout, or a
            Hub file as ``owner/repo/path``. A file that does not fit stops
            with one line.
        text_drop_rate: Probability that a sample's prompt becomes ``""``.
        image_drop_rate: Probability that its image becomes "no image" (the
            family pipeline's unconditional image prompt).
        both_drop_rate: Probability that both are dropped.
        noise_offset: Offset noise strength (0 disables it).
        gradient_checkpointing: Recompute the denoiser's activations in the
            backward pass to save memory.
        generation_cfg: How ``mode='predict'`` (validation, test) generates:
            ``steps``, ``guidance_scale``, ``negative_prompt``, ``height``,
            ``width``, and for FLUX-type bases ``true_cfg_scale`` (true CFG
            with ``negative_prompt``, e.g. ``''``); the family's defaults
            otherwise.
        frozen_dtype: ``'bf16'`` or ``'fp16'`` stores the frozen weights in
            half precision (the adapter stays fp32); needs mixed precision
            (``--amp``). An fp32-only VAE (``force_upcast``) stays fp32.
        quantize: Store frozen Linear weights quantized, per part:
            ``dict(denoiser=..., text_encoders=..., image_encoder=...)``, each
            ``'int8'``, ``'fp8'`` or ``'nf4'`` (see ``models.quantization``);
            the adapter is not quantized.
        channels_last: Run the denoiser in channels-last memory format.
        compile_denoiser: ``torch.compile`` the denoiser in place: ``'whole'``
            (or True) or its repeated blocks, ``'regional'`` (see
            ``models.compilation``).
        adapter_only_state_dict: ``state_dict()`` holds the adapter only
            (checkpoints are adapter-only either way, see
            ``AdapterCheckpointHook``). FSDP needs every weight it shards in
            the state dict: its strategy config turns this off.
        data_preprocessor: Config of the data preprocessor.
        init_cfg: MMEngine weight-init config (unused by default).
    """

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        image_encoder: dict | str,
        family: dict = dict(type='SD15'),
        image_projection: dict | None = None,
        pretrained_ip_adapter: str | None = None,
        text_drop_rate: float = 0.05,
        image_drop_rate: float = 0.05,
        both_drop_rate: float = 0.05,
        noise_offset: float = 0.0,
        gradient_checkpointing: bool = False,
        generation_cfg: dict | None = None,
        frozen_dtype: str | None = None,
        quantize: dict | None = None,
        channels_last: bool = False,
        compile_denoiser: bool | str = False,
        adapter_only_state_dict: bool = True,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='IPAdapterDataPreprocessor')
        super().__init__(
            data_preprocessor=MODELS.build(data_preprocessor), init_cfg=init_cfg
        )
        rates = (text_drop_rate, image_drop_rate, both_drop_rate)
        if min(rates) < 0 or sum(rates) > 1:
            raise UserError(
                'model.text_drop_rate + image_drop_rate + '
                f'both_drop_rate must be in [0, 1], got {rates}'
            )
        self.drop_rates = dict(
            text_rate=text_drop_rate,
            image_rate=image_drop_rate,
            both_rate=both_drop_rate,
        )
        self.noise_offset = noise_offset
        encoder_cfg = image_encoder_config(image_encoder)
        self.sources = dict(
            pretrained_model_name_or_path=pretrained_model_name_or_path,
            image_encoder=encoder_cfg,
        )

        self.family = MODELS.build(
            family,
            default_args=dict(
                pretrained_model_name_or_path=pretrained_model_name_or_path
            ),
        )
        self.image_encoder = MODELS.build(encoder_cfg)
        self.requires_grad_(False)  # all frozen; only what follows trains

        image_projection = image_projection or self.family.default_projection
        reads = MODELS.get(image_projection['type']).image_features
        widths = dict(cross_attention_dim=self.family.token_width(self.family.denoiser))
        if reads:  # FaceID reads a face embedding only
            widths['image_embed_dim'] = self.image_encoder.feature_dim(reads)
        self.image_projection = MODELS.build(image_projection, default_args=widths)
        self.family.install_adapter(self.image_projection)
        self.generation_cfg = dict(
            self.family.generation.generation_defaults, height=None, width=None
        )
        self.generation_cfg.update(generation_cfg or {})
        check_true_cfg(
            self.family,
            self.generation_cfg.get('true_cfg_scale'),
            'model.generation_cfg.true_cfg_scale',
        )

        denoiser = self.family.denoiser
        if gradient_checkpointing:
            denoiser.enable_gradient_checkpointing()
        self.frozen_dtype = frozen_dtype
        if frozen_dtype:
            self._cast_frozen_weights(frozen_dtype)
        self.quantize_modes = check_quantize(quantize)
        if self.quantize_modes:
            quantize_parts(self, self.quantize_modes)
        self.adapter_only_state_dict = adapter_only_state_dict
        self.channels_last = channels_last
        if channels_last:
            denoiser.to(memory_format=torch.channels_last)
        compile_denoiser_in_place(denoiser, compile_denoiser)
        self._empty_prompt: dict | None = None
        self._null_image: torch.Tensor | None = None
        self._fingerprint: str | None = None
        self.register_load_state_dict_post_hook(_drop_missing_frozen_keys)
        if pretrained_ip_adapter:
            self.load_pretrained_ip_adapter(pretrained_ip_adapter)

    def load_pretrained_ip_adapter(self, spec: str) -> None:
        """Initialise the adapter from an official-layout file (local or Hub)."""
        from ..official_format import load_adapter_into
        from .model_sources import resolve_file

        load_adapter_into(self, resolve_file(spec, 'model.pretrained_ip_adapter'))

    def expected_adapter(self) -> dict[str, Any]:
        """What an adapter file must be to fit this model (see
        :func:`diffengine_ipa.official_format.compare_adapter`)."""
        from ..official_format import expected_adapter

        return expected_adapter(
            self.family, self.family.denoiser, self.image_encoder, self.image_projection
        )

    def forward(
        self, inputs: dict, data_samples: Any | None = None, mode: str = 'loss'
    ) -> dict[str, torch.Tensor]:
        """The family's training loss (``mode='loss'``), or generated images
        (``mode='predict'``, see :meth:`predict`).

        Args:
            inputs: ``pixel_values`` (B, 3, H, W) in [-1, 1] for the VAE,
                ``reference_pixel_values`` (B, 3, S, S) for the image encoder,
                ``text``, a list of B prompts, and what the family needs
                besides (SDXL: ``time_ids`` (B, 6)); or their cached
                encodings (``latent_mean``/``latent_std``, the prompt
                encodings, ``image_features``).
        """
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode != 'loss':
            raise ValueError(
                f"IPAdapter.forward has no mode {mode!r}; use 'loss' or 'predict'"
            )
        self._check_cache_fingerprint(data_samples)
        if self.frozen_dtype and not torch.is_autocast_enabled(self.device.type):
            raise UserError(
                f'model.frozen_dtype={self.frozen_dtype!r} needs '
                'mixed precision: train with --amp'
            )
        family = self.family
        objective = family.objective
        with torch.no_grad():
            mean, std = self.latent_moments(inputs)  # (B, C, h, w)
            family.check_latent_size(mean)
            draws = draw_training_randomness(
                mean.shape,
                objective.sample_timestep,
                _sample_indices(data_samples),
                mean.device,
                with_offset=bool(self.noise_offset),
            )
            drop_text, drop_image = condition_drops(draws.drop, **self.drop_rates)
            latents = family.scale_latents(mean + std * draws.latent_eps.to(mean.dtype))
            conditions = self.text_conditions(inputs, drop_text)
            image_features = self.image_features(inputs, drop_image)

        noise = draws.noise.to(latents.dtype)
        if self.noise_offset:
            noise += self.noise_offset * draws.offset.to(latents.dtype)
        noisy = self._noisy(latents, noise, draws.timesteps)
        return {
            'loss': self._denoising_loss(
                latents, noise, noisy, draws.timesteps, conditions, image_features
            )
        }

    def _noisy(
        self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """The objective's noisy latents (B, C, h, w) at ``timesteps``."""
        noisy = self.family.objective.add_noise(latents, noise, timesteps)
        if self.channels_last:
            noisy = noisy.contiguous(memory_format=torch.channels_last)
        return noisy

    def _denoising_loss(
        self,
        latents: torch.Tensor,
        noise: torch.Tensor,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        conditions: dict,
        image_features: torch.Tensor,
    ) -> torch.Tensor:
        """Project the image features to tokens, denoise, score (a scalar)."""
        image_tokens = self.image_projection(image_features, timesteps)
        prediction = self.family.denoise(noisy, timesteps, conditions, image_tokens)
        return self.family.objective.loss(prediction, latents, noise, noisy, timesteps)

    @torch.no_grad()
    def reference_losses(self, inputs: dict, seed: int = 0) -> dict[str, torch.Tensor]:
        """The denoising loss of one batch three ways, with the same noise,
        timesteps and prompts: each sample's own reference (``true``),
        another sample's (``shuffled``: the batch rolled by one, a
        derangement for B ≥ 2) and none (``none``: the family's
        unconditional image prompt, as the image drop in training).

        Args:
            inputs: A batch as :meth:`forward` takes it (images or cached
                encodings).
            seed: Keys the draws (:func:`draw_fixed_randomness`): the same
                seed gives the same numbers on every call, and the global
                random state is not touched.

        Returns:
            ``{'true', 'shuffled', 'none'}``: scalar losses.
        """
        family = self.family
        mean, std = self.latent_moments(inputs)  # (B, C, h, w)
        draws = draw_fixed_randomness(
            mean.shape, family.objective.sample_timestep, seed, mean.device
        )
        latents = family.scale_latents(mean + std * draws.latent_eps.to(mean.dtype))
        keep = torch.zeros(len(mean), dtype=torch.bool, device=mean.device)
        conditions = self.text_conditions(inputs, keep)
        features = self.image_features(inputs, keep)  # (B, ...)
        noise = draws.noise.to(latents.dtype)
        noisy = self._noisy(latents, noise, draws.timesteps)
        variants = dict(
            true=features,
            shuffled=_map(features, lambda f: f.roll(1, dims=0)),
            none=self.image_features(inputs, ~keep),
        )
        return {
            name: self._denoising_loss(
                latents, noise, noisy, draws.timesteps, conditions, value
            )
            for name, value in variants.items()
        }

    @property
    def device(self) -> torch.device:
        return self.family.denoiser.device

    # --- the three conditions, from cached tensors or computed now ---------

    def latent_moments(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE latent distribution's mean and std: cached
        (``latent_mean``/``latent_std``) or of ``pixel_values`` (the same
        latents either way once sampled)."""
        if 'latent_mean' in inputs:
            return inputs['latent_mean'], inputs['latent_std']
        return self.family.latent_distribution(inputs['pixel_values'])

    def text_conditions(
        self, inputs: dict, drop_text: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The denoiser's text conditions; dropped samples get the empty
        prompt's."""
        if 'text' in inputs:
            texts = [
                '' if drop else text
                for text, drop in zip(inputs['text'], drop_text, strict=True)
            ]
            encodings = self.family.encode_prompt(texts)
        else:  # cached encodings
            empty = self.empty_prompt_encodings()
            encodings = {
                key: torch.where(
                    _per_sample(drop_text, value), value, inputs[key].to(value.dtype)
                )
                for key, value in empty.items()
            }
        return self.family.conditions(encodings, inputs)

    def image_features(self, inputs: dict, drop_image: torch.Tensor) -> torch.Tensor:
        """What the projection reads (cached ``image_features`` or encoded
        now); a dropped sample gets :meth:`null_image_features`."""
        if getattr(self.image_projection, 'face_id', False):
            return self._face_features(inputs, drop_image)
        features = inputs.get('image_features')
        if features is None:
            features = self.image_encoder(
                inputs['reference_pixel_values'], self.image_projection.image_features
            )
        null = self.null_image_features().to(features.dtype)
        return torch.where(_per_sample(drop_image, features), null, features)

    def _face_features(
        self, inputs: dict, drop_image: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """FaceID's inputs: ``face_embeds`` (B, 512), zeros for a dropped
        sample (the official unconditional embedding), and for Plus/PlusV2
        ``clip_embeds``, the image encoder's tokens of the face crop (B, T, D)
        (of "no image" when dropped)."""
        if 'face_embeds' not in inputs:
            raise UserError(
                'a FaceID model needs inputs["face_embeds"]: add '
                "dict(type='LoadFaceEmbedding') to the data pipeline and "
                "'face_embeds' to PackInputs' input_keys"
            )
        face = inputs['face_embeds'].to(self.device)  # (B, 512)
        drop = _per_sample(drop_image, face)
        features = dict(face_embeds=torch.where(drop, torch.zeros_like(face), face))
        kind = self.image_projection.image_features
        if kind:
            clip = self.image_encoder(inputs['reference_pixel_values'], kind)
            null = self.null_image_features().to(clip.dtype)
            features['clip_embeds'] = torch.where(
                _per_sample(drop_image, clip), null, clip
            )
        return features

    def null_image_features(self) -> torch.Tensor:
        """The features of "no image" (1, ...): the family pipeline's
        unconditional image prompt; computed once."""
        if self._null_image is None:
            kind = self.image_projection.image_features
            self._null_image = self.image_encoder.null_features(
                self.family.generation.null_image[kind], kind
            )
        return self._null_image

    def empty_prompt_encodings(self) -> dict[str, torch.Tensor]:
        """The family's encodings of ``""`` (1, ...), computed once."""
        if self._empty_prompt is None:
            with torch.no_grad():
                self._empty_prompt = self.family.encode_prompt([''])
        return self._empty_prompt

    def encoder_fingerprint(self) -> str:
        """Identity of the frozen encoders' weights and settings (for
        embedding caches)."""
        if self._fingerprint is None:
            modules = dict(
                self.family.conditioning_modules(),
                image_encoder=self.image_encoder.model,
            )
            self._fingerprint = fingerprint_modules(
                modules,
                extra=(
                    f'family={type(self.family).__name__};'
                    f'settings={sorted(self.family.settings().items())};'
                    f'image_features={self.image_projection.image_features};'
                    f'preprocess={self.image_encoder.processor.to_json_string()}'
                ),
            )
        return self._fingerprint

    def _check_cache_fingerprint(self, data_samples: Any) -> None:
        """Refuse cached inputs that other encoders made."""
        if not isinstance(data_samples, dict) or (
            'cache_fingerprint' not in data_samples
        ):
            return
        ours = self.encoder_fingerprint()
        theirs = set(data_samples['cache_fingerprint'])
        if theirs != {ours}:
            raise UserError(
                f'the embedding cache was made with other frozen models '
                f'(fingerprint {sorted(theirs)[0][:12]}, this model '
                f'{ours[:12]}): rebuild it with tools/cache_embeddings.py'
            )

    def _cast_frozen_weights(self, name: str) -> None:
        dtype = to_dtype(name, 'model.frozen_dtype')
        if dtype == torch.float32:
            return
        keep_fp32 = self.family.vae.config.get('force_upcast', False)
        for param_name, param in self.named_parameters():
            if keep_fp32 and param_name.startswith('family.vae.'):
                continue
            if not param.requires_grad:
                param.data = param.data.to(dtype)

    def predict(self, inputs: dict, data_samples: Any = None) -> list[dict]:
        """Generate one image per sample with the adapter as it is now.

        Args:
            inputs: ``img`` (reference PIL images), ``prompt``, ``scale`` and
                ``seed``, one of each per sample (see ``IPAdapterEvalDataset``);
                FLUX.1 Kontext: ``input_img``, the images to edit (cases with
                an ``input_file``).
            data_samples: Per-sample metadata, passed through.

        Returns:
            One dict per sample: its metadata plus ``reference``, ``prompt``,
            ``scale``, ``seed`` and the generated ``image``.
        """
        cfg = self.generation_cfg
        count = len(inputs['prompt'])
        if isinstance(data_samples, dict):  # collated: one list per key
            samples = [{k: v[i] for k, v in data_samples.items()} for i in range(count)]
        else:
            samples = data_samples or [{} for _ in range(count)]
        # Per-sample inputs some families read: FaceID generates from a face
        # embedding (D,), FLUX.1 Kontext edits an input image.
        extras = [{} for _ in range(count)]
        if inputs.get('face_embeds') is not None:
            for face, extra in zip(inputs['face_embeds'], extras, strict=True):
                extra['image_embeds'] = [face[None]]
        if inputs.get('input_img') is not None:
            for image, extra in zip(inputs['input_img'], extras, strict=True):
                extra['input_image'] = image
        outputs = []
        with live_pipeline(self) as pipe:
            for reference, prompt, scale, seed, extra, meta in zip(
                inputs['img'],
                inputs['prompt'],
                inputs['scale'],
                inputs['seed'],
                extras,
                samples,
                strict=True,
            ):
                (image,) = pipe(
                    reference,
                    prompt,
                    cfg['negative_prompt'],
                    float(scale),
                    cfg['steps'],
                    cfg['guidance_scale'],
                    int(seed),
                    1,
                    cfg['height'],
                    cfg['width'],
                    true_cfg_scale=cfg.get('true_cfg_scale'),
                    **extra,
                )
                outputs.append(
                    dict(
                        meta,
                        reference=reference,
                        prompt=prompt,
                        scale=float(scale),
                        seed=int(seed),
                        image=image,
                    )
                )
        return outputs

    # --- the adapter as the model's state -----------------------------------

    def adapter_parameter_names(self) -> set[str]:
        """Names of the trainable (adapter) parameters."""
        return {n for n, p in self.named_parameters() if p.requires_grad}

    def state_dict(
        self, destination: dict | None = None, prefix: str = '', keep_vars: bool = False
    ) -> dict[str, torch.Tensor]:
        """The adapter's weights only (unless ``adapter_only_state_dict`` is
        off).

        The frozen base comes from the model sources, so checkpoints stay
        small (~86 MB for SD1.5) and ``load_state_dict`` accepts them.
        """
        if not self.adapter_only_state_dict:
            return super().state_dict(
                destination=destination, prefix=prefix, keep_vars=keep_vars
            )
        full = super().state_dict(prefix=prefix, keep_vars=keep_vars)
        adapter = {prefix + name for name in self.adapter_parameter_names()}
        if destination is None:
            destination = OrderedDict()
        for key, value in full.items():
            if key in adapter:
                destination[key] = value
        return destination
