"""Generate images with diffusers' pipelines, from files or from a live model.

:class:`AdapterPipeline` is the one place that calls a pipeline: each loaded
adapter's image encoder turns its references into features, and the family's
pipeline gets them (and the unconditional image prompt its own
``encode_image`` would make, or a negative image's features) as precomputed
``ip_adapter_image_embeds`` — so any image encoder generates, and for the
encoders diffusers knows the images equal diffusers' own.
:func:`live_pipeline` wraps a model that is being trained in its family's
pipeline without copying or re-loading anything.
"""

import contextlib
import inspect
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from ..errors import UserError

__all__ = [
    'AdapterPipeline',
    'ImagePrompt',
    'live_pipeline',
    'make_pipeline',
    'pipeline_extras',
    'check_true_cfg',
    'true_cfg_kwargs',
]

_log = logging.getLogger(__name__)


def check_true_cfg(
    family: Any, true_cfg_scale: float | None, field: str = 'true_cfg_scale'
) -> None:
    """True CFG exists for FLUX-type bases only (``FluxPipeline``'s
    ``true_cfg_scale``): elsewhere ``field`` is one clear error."""
    generation = family.generation
    if true_cfg_scale is not None and not generation.true_cfg:
        name = generation.family_name
        raise UserError(
            f'{field}: {name} has no true CFG (only FLUX-type bases, whose '
            'guidance_scale is distilled guidance); its guidance_scale is '
            'already classifier-free guidance: drop the option'
        )


def true_cfg_kwargs(
    family: Any, true_cfg_scale: float | None, negative_prompt: str | None
) -> dict[str, Any]:
    """The pipeline's true-CFG argument, with FluxPipeline's rule said in
    one line where it would surprise: true CFG runs only when
    ``true_cfg_scale`` > 1 *and* a negative prompt is given (``''`` counts),
    and then also with the negative image embedding (the unconditional
    image prompt, or ``negative_reference``'s features)."""
    check_true_cfg(family, true_cfg_scale)
    if not family.generation.true_cfg:
        return {}
    if true_cfg_scale is None or true_cfg_scale <= 1:
        if negative_prompt is not None:
            _log.warning(
                "the negative prompt is ignored: FLUX's guidance_scale is "
                'distilled guidance; give true_cfg_scale > 1 (e.g. '
                '--true-cfg-scale 4.0) for true CFG with it'
            )
        return {} if true_cfg_scale is None else dict(true_cfg_scale=true_cfg_scale)
    if negative_prompt is None:
        _log.warning(
            f'true_cfg_scale={true_cfg_scale} does nothing without a negative '
            "prompt (FluxPipeline's rule): give negative_prompt='' "
            "(--negative-prompt '') for true CFG against the empty prompt"
        )
    return dict(true_cfg_scale=true_cfg_scale)


def pipeline_extras(pipeline_class: type) -> dict[str, Any]:
    """What this kit never uses (safety checker, watermark), as the
    pipeline's arguments that turn it off."""
    accepted = inspect.signature(pipeline_class).parameters
    extras = dict(
        safety_checker=None, requires_safety_checker=False, add_watermarker=False
    )
    return {k: v for k, v in extras.items() if k in accepted}


def make_pipeline(pipeline_class: type, components: dict[str, Any]) -> Any:
    """Build ``pipeline_class`` from components it accepts."""
    accepted = inspect.signature(pipeline_class).parameters
    parts = {k: v for k, v in components.items() if k in accepted}
    pipe = pipeline_class(**parts, **pipeline_extras(pipeline_class))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@dataclass
class ImagePrompt:
    """What one loaded adapter reads: its image encoder and which features."""

    image_encoder: Any  # ImageEncoder
    features: str | None  # 'pooled' or 'hidden_states'; None: FaceID's
    # FaceID ('FaceID', 'FaceID-Plus', 'FaceID-PlusV2'): the image embeds are
    # face embeddings
    faceid: str | None = None


def _per_adapter(value: Any, count: int, what: str) -> list:
    """One entry per adapter: a single value for one adapter, or a list of
    ``count`` entries."""
    if count == 1 and not (
        isinstance(value, (list, tuple))
        and len(value) == 1
        and isinstance(value[0], (list, tuple))
    ):
        return [value]
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise UserError(f'{what}: give one entry per adapter ({count} adapters)')
    return list(value)


def _images(value: Any) -> list[Image.Image]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class AdapterPipeline:
    """A family's diffusers pipeline with one or more IP-Adapters loaded, each
    fed by its own image encoder.

    Args:
        pipe: The diffusers pipeline (adapters loaded or attached).
        family: The family (class or instance).
        prompts: One :class:`ImagePrompt` per adapter, in loading order.
        settings: The family's config entry (e.g. ``max_sequence_length``).
    """

    def __init__(
        self,
        pipe: Any,
        family: Any,
        prompts: Sequence[ImagePrompt],
        settings: dict | None = None,
    ) -> None:
        self.pipe = pipe
        self.family = family
        self.prompts = list(prompts)
        self.settings = dict(settings or {})

    @torch.no_grad()
    def encode(
        self, images: Image.Image | Sequence[Image.Image], adapter: int = 0
    ) -> torch.Tensor:
        """The features (N, ...) adapter ``adapter`` reads from N references:
        what ``image_embeds`` takes, and what can be saved and reused."""
        prompt = self.prompts[adapter]
        encoder = prompt.image_encoder
        return encoder(encoder.preprocess(_images(images)), prompt.features)

    @torch.no_grad()
    def null(self, adapter: int = 0, count: int = 1) -> torch.Tensor:
        """The family pipeline's "no image" for ``count`` references."""
        prompt = self.prompts[adapter]
        rule = self.family.generation.null_image[prompt.features]
        null = prompt.image_encoder.null_features(rule, prompt.features)
        return null.expand(count, *null.shape[1:])

    def set_scale(self, scale: Any) -> None:
        """Set the adapters' strength (see :meth:`__call__`'s ``scale``); a
        spec the pipeline cannot take is one line."""
        value = self.family.generation.adapter_scale(scale, len(self.prompts))
        try:
            self.pipe.set_ip_adapter_scale(value)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
            detail = str(err).strip().splitlines()
            raise UserError(
                f'scale {json.dumps(scale, default=str)[:80]}: '
                f'{detail[0][:160] if detail else type(err).__name__}; give a '
                'number, one per adapter, or per-block scales such as '
                '{"up": {"block_0": [0.0, 1.0]}}'
            ) from None

    def __call__(
        self,
        reference: Any = None,
        prompt: str = '',
        negative_prompt: str | None = None,
        scale: Any = 1.0,
        steps: int = 50,
        guidance_scale: float = 7.5,
        seed: int = 0,
        num_images: int = 1,
        height: int | None = None,
        width: int | None = None,
        *,
        image_embeds: Sequence[torch.Tensor] | None = None,
        negative_reference: Any = None,
        masks: Any = None,
        control_image: Image.Image | None = None,
        control_scale: float = 1.0,
        true_cfg_scale: float | None = None,
        face_image: Any = None,
        s_scale: float | None = None,
        lora_scale: float = 1.0,
        input_image: Image.Image | None = None,
    ) -> list[Image.Image]:
        """Images for ``prompt`` guided by the references.

        Args:
            reference: A PIL image or a list of them (several references for
                one adapter); with several adapters, one of those per adapter.
            scale: A float; with several adapters, one per adapter; or the
                family's per-block form (a dict for SD1.5/SDXL, a list per
                layer for FLUX.1) or preset name (``'style'``, ``'layout'``,
                ``'style_and_layout'``: InstantStyle's SDXL blocks).
            image_embeds: Precomputed features, one tensor (N, ...) per
                adapter (from :meth:`encode`), instead of ``reference``.
            negative_reference: Images whose features replace the
                unconditional image prompt (per adapter, like ``reference``).
            masks: Region masks (PIL, white = where the reference applies),
                one per reference, per adapter like ``reference``.
            control_image: The ControlNet's condition (a pipeline loaded
                with a ControlNet).
            control_scale: The ControlNet's conditioning scale.
            true_cfg_scale: FLUX-type bases: true classifier-free guidance
                against ``negative_prompt`` and the negative image embedding
                (FluxPipeline's ``true_cfg_scale``; > 1 with a negative
                prompt); an error for other families.
            face_image: FaceID-Plus/PlusV2: the aligned face crop(s) the
                image encoder reads (FaceID's ``image_embeds`` are the face
                embeddings (N, 512); "no face" is zeros, as the official
                code generates).
            s_scale: FaceID-PlusV2's shortcut scale (default: the
                projection's, 1.0).
            lora_scale: Strength of FaceID's UNet attention LoRA.
            input_image: FLUX.1 Kontext: the image to edit (resized to the
                generated size); an error for other families.

        Seeded the standard diffusers way:
        ``generator=torch.Generator(device).manual_seed(seed)``.
        """
        count = len(self.prompts)
        face_id = self.prompts[0].faceid
        if face_id:
            if count != 1 or image_embeds is None:
                raise UserError(
                    'FaceID generates from a face embedding, one adapter: give '
                    'image_embeds (the face embeddings, --face-embeds emb.npy)'
                )
        if image_embeds is None:
            if reference is None:
                raise UserError('give reference images or image_embeds')
            image_embeds = [
                self.encode(images, i)
                for i, images in enumerate(_per_adapter(reference, count, 'reference'))
            ]
        elif isinstance(image_embeds, torch.Tensor):
            image_embeds = [image_embeds]
        if len(image_embeds) != count:
            raise UserError(
                f'image_embeds: give one tensor per adapter ({count} '
                f'adapters, {len(image_embeds)} tensors)'
            )
        device, dtype = self.pipe.device, self.pipe.dtype
        image_embeds = [e.to(device=device, dtype=dtype) for e in image_embeds]
        if face_id:
            nulls = [torch.zeros_like(image_embeds[0])]
        elif negative_reference is None:
            nulls = [self.null(i, len(e)) for i, e in enumerate(image_embeds)]
        else:
            nulls = [
                self.encode(images, i)
                for i, images in enumerate(
                    _per_adapter(negative_reference, count, 'negative_reference')
                )
            ]
        kwargs = true_cfg_kwargs(self.family, true_cfg_scale, negative_prompt)
        family = self.family.generation
        family.check_image_prompts([len(e) for e in image_embeds])
        self.set_scale(scale)
        kwargs.update(family.image_prompt_kwargs(image_embeds, nulls, guidance_scale))
        if masks is not None:
            per_adapter = [_images(m) for m in _per_adapter(masks, count, 'masks')]
            for index, (given, embeds) in enumerate(
                zip(per_adapter, image_embeds, strict=True)
            ):
                if len(given) != len(embeds):
                    which = f'adapter {index + 1} has' if count > 1 else 'there are'
                    raise UserError(
                        f'masks: {which} {len(embeds)} reference image(s) and '
                        f'{len(given)} mask(s); give one mask per reference, in '
                        'the same order (white = where that reference applies)'
                    )
            kwargs.update(family.mask_kwargs(per_adapter, self.pipe, height, width))
        if control_image is not None:
            kwargs.update(family.control_kwargs(control_image, control_scale))
        kwargs.update(family.input_image_kwargs(self.pipe, input_image, height, width))
        generator = torch.Generator(self.pipe.device).manual_seed(seed)
        face = (
            _face_crop(
                self,
                face_image,
                len(image_embeds[0]),
                num_images,
                guidance_scale,
                s_scale,
            )
            if face_id
            else contextlib.nullcontext()
        )
        with face, _lora_scale(self, lora_scale):
            return self.pipe(
                prompt=prompt,
                negative_prompt=negative_prompt,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                num_images_per_prompt=num_images,
                height=height,
                width=width,
                generator=generator,
                **kwargs,
                **family.pipeline_call_kwargs(self.settings),
            ).images


def _face_projection(pipe: Any) -> Any:
    """The FaceID projection a UNet pipeline calls."""
    return pipe.unet.encoder_hid_proj.image_projection_layers[0]


@contextlib.contextmanager
def _face_crop(
    self: 'AdapterPipeline',
    face_image: Any,
    faces: int,
    num_images: int,
    guidance_scale: float,
    s_scale: float | None,
) -> Iterator[None]:
    """FaceID-Plus/PlusV2 for one call: the image encoder's tokens of the
    face crops as the projection's ``clip_embeds`` (the null image's first
    when the pipeline guides), as diffusers' FaceID-Plus example sets them,
    and PlusV2's shortcut (at ``s_scale``)."""
    prompt = self.prompts[0]
    if s_scale is not None and prompt.faceid != 'FaceID-PlusV2':
        raise UserError(
            f"s_scale (--s-scale) is FaceID-PlusV2's shortcut scale; this "
            f'adapter is {prompt.faceid}'
        )
    if not prompt.features:  # FaceID: no image encoder
        yield
        return
    if face_image is None:
        raise UserError(
            'FaceID-Plus reads the aligned face crop too: give face_image '
            '(--face-image crop.png)'
        )
    crops = _images(face_image)
    if len(crops) != faces:
        raise UserError(
            f'face_image: {len(crops)} crop(s) for {faces} face embedding(s); '
            'give one crop per embedding, in the same order'
        )
    clip = self.encode(crops)[None].expand(num_images, -1, -1, -1)  # (n, N, T, D)
    if guidance_scale > 1:
        null = self.null(0, faces)[None].expand(num_images, -1, -1, -1)
        clip = torch.cat([null, clip])
    projection = _face_projection(self.pipe)
    saved = projection.clip_embeds, projection.shortcut, projection.shortcut_scale
    projection.clip_embeds = clip.to(device=self.pipe.device, dtype=self.pipe.dtype)
    projection.shortcut = prompt.faceid == 'FaceID-PlusV2'
    if s_scale is not None:
        projection.shortcut_scale = s_scale
    try:
        yield
    finally:  # a loaded pipeline's next call, or training, as before
        projection.clip_embeds, projection.shortcut, projection.shortcut_scale = saved


@contextlib.contextmanager
def _lora_scale(self: 'AdapterPipeline', scale: float) -> Iterator[None]:
    """FaceID's LoRA at ``scale`` for one call: diffusers' (peft, loaded by
    ``load_ip_adapter`` as ``faceid_<i>``) or the kit's own processors."""
    unet = getattr(self.pipe, 'unet', None)
    names = [n for n in getattr(unet, 'peft_config', {}) if n.startswith('faceid_')]
    if names:
        self.pipe.set_adapters(names, adapter_weights=[scale] * len(names))
    ours = [
        p
        for p in (unet.attn_processors.values() if unet is not None else ())
        if hasattr(p, 'lora_scale')
    ]
    for processor in ours:
        processor.lora_scale = scale
    try:
        yield
    finally:
        for processor in ours:  # training goes on at full strength
            processor.lora_scale = 1.0


@contextlib.contextmanager
def live_pipeline(model: Any) -> Iterator[AdapterPipeline]:
    """The model's family pipeline, generating with the adapter as it is now.

    The family attaches the model's projection where its pipeline looks for
    it for the duration of the block and detaches it after (as diffusers'
    ``unload_ip_adapter`` does), so checkpoints never see it twice. Frozen
    weights kept in bf16/fp16 beside the fp32 adapter generate under autocast
    to that dtype, as they train. Encoders freed for training from the
    embedding cache are loaded for the block (see ``resident_encoders``).
    """

    from .image_projections import faceid_variant
    from .resident_encoders import resident_encoders

    family, encoder = model.family, model.image_encoder
    with (
        resident_encoders(model),
        family.generation.attached_projection(family.denoiser, model.image_projection),
        _frozen_dtype_autocast(model),
    ):
        pipe = make_pipeline(
            family.generation.live_pipeline_class(),
            dict(
                family.pipeline_components(),
                image_encoder=encoder.model,
                feature_extractor=encoder.processor,
            ),
        )
        yield AdapterPipeline(
            pipe,
            family,
            [
                ImagePrompt(
                    encoder,
                    model.image_projection.image_features,
                    faceid_variant(
                        type(model.image_projection),
                        getattr(model.image_projection, 'shortcut', False),
                    ),
                )
            ],
            family.settings(),
        )


def _frozen_dtype_autocast(model: Any) -> contextlib.AbstractContextManager:
    """Autocast to ``model.frozen_dtype`` (bf16/fp16), unless the frozen
    weights are fp32 or autocast is already on."""
    from ..dtypes import to_dtype

    device = model.device.type
    frozen = getattr(model, 'frozen_dtype', None)
    if not frozen or torch.is_autocast_enabled(device):
        return contextlib.nullcontext()
    dtype = to_dtype(frozen, 'model.frozen_dtype')
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=dtype)
