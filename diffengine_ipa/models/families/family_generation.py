"""What generation needs of a family: its diffusers pipeline and the glue
between our image prompts and that pipeline's IP-Adapter arguments.

One role of three (see :mod:`diffengine_ipa.models.families`): the frozen
base model that training reads is :class:`DiffusionFamily`, the official file
layout is an :class:`~diffengine_ipa.official_format.layouts.AdapterLayout`.
Everything here is a class attribute or class method: the inference API and
the tools use it without loading any weights.
"""

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ...errors import UserError

__all__ = ['FamilyGeneration']


class FamilyGeneration:
    """A family's pipeline and its arguments (class attributes and methods)."""

    family_name = ''  # the registered family (``model.family.type``)
    pipeline_class = ''
    # The family's ControlNet pipeline and model classes (diffusers).
    controlnet_pipeline_class = ''
    controlnet_model_class = ''
    # The unconditional image prompt of the family's pipeline, by the
    # features the projection reads (see ImageEncoder.null_features); the
    # training drops use it too, so the adapter learns what it generates with.
    null_image = dict(pooled='zero_features', hidden_states='zero_pixels')
    generation_defaults: dict = {}
    true_cfg = False  # the pipeline's true_cfg_scale (FLUX-type bases)
    edits_input_image = False  # the pipeline edits an input image (Kontext)
    # The CUDA precision of generation when the user names none.
    inference_dtype = 'fp16'
    # Generated image sides are multiples of this (VAE factor × patch size).
    size_multiple = 8
    # Where a live pipeline looks for the image projection: the attribute of
    # the denoiser, and whether it is wrapped in MultiIPAdapterImageProjection.
    projection_slot = ('encoder_hid_proj', True)
    # Named per-block scales (InstantStyle's style / layout blocks).
    scale_presets: dict = {}
    # Pipeline call arguments read from the family's config entry, with the
    # defaults the family's constructor has (e.g. max_sequence_length).
    call_settings: dict = {}

    @classmethod
    @contextlib.contextmanager
    def attached_projection(
        cls, denoiser: nn.Module, projection: nn.Module
    ) -> Iterator[None]:
        """Put ``projection`` where the family's pipeline looks for it, for the
        duration of the block (as ``load_ip_adapter`` would), then take it
        away again, so that checkpoints never hold it twice."""
        from diffusers.models.embeddings import MultiIPAdapterImageProjection

        attribute, wrapped = cls.projection_slot
        setattr(
            denoiser,
            attribute,
            MultiIPAdapterImageProjection([projection]) if wrapped else projection,
        )
        if wrapped:
            denoiser.config.encoder_hid_dim_type = 'ip_image_proj'
        processors = denoiser.attn_processors.values()
        scales = [(p, copy.copy(p.scale)) for p in processors if hasattr(p, 'scale')]
        try:
            yield
        finally:
            setattr(denoiser, attribute, None)
            if wrapped:
                denoiser.config.encoder_hid_dim_type = None
            for processor, scale in scales:  # generation may change them
                processor.scale = scale

    @classmethod
    def live_pipeline_class(cls) -> type:
        """The pipeline class generating with an attached adapter: the
        family's diffusers pipeline (Qwen-Image's: the kit's mixin on it)."""
        import diffusers

        return getattr(diffusers, cls.pipeline_class)

    @classmethod
    def load_ip_adapter(cls, pipe: Any, nested: list[dict[str, dict]]) -> None:
        """Load adapters (each ``{'image_proj': ..., 'ip_adapter': ...}``, the
        official names) the way a diffusers user does."""
        count = len(nested)
        pipe.load_ip_adapter(
            nested, subfolder=[''] * count, weight_name=['ip_adapter'] * count
        )

    @classmethod
    def check_image_prompts(cls, counts: list[int]) -> None:
        """One line when the family's pipeline cannot take this many adapters
        (``len(counts)``) or references per adapter."""

    @classmethod
    def adapter_scale(cls, scale: Any, count: int) -> Any:
        """``scale`` as the pipeline's ``set_ip_adapter_scale`` takes it: a
        float, one per adapter, the per-block form, or a preset's name."""
        if isinstance(scale, str):
            if scale not in cls.scale_presets:
                raise UserError(
                    f'scale preset {scale!r}: {cls.family_name} has '
                    + (
                        f'{", ".join(sorted(cls.scale_presets))}'
                        if cls.scale_presets
                        else "none (InstantStyle's style and "
                        "layout blocks are SDXL's); give per-block scales"
                    )
                )
            preset = cls.scale_presets[scale]
            return preset if count == 1 else [preset] * count
        return scale

    @classmethod
    def image_prompt_kwargs(
        cls,
        images: list[torch.Tensor],
        nulls: list[torch.Tensor],
        guidance_scale: float,
    ) -> dict[str, Any]:
        """The pipeline's arguments for precomputed image features: per
        adapter, those (N, ...) of its N references and of "no image"."""
        raise NotImplementedError

    @classmethod
    def mask_kwargs(
        cls, masks: list[list], pipe: Any, height: int | None, width: int | None
    ) -> dict[str, Any]:
        """The pipeline's arguments for region masks (per adapter, one per
        reference)."""
        raise UserError(
            f"region masks: {cls.pipeline_class}'s IP-Adapter "
            'attention takes none (diffusers 0.42); the SD1.5 and '
            'SDXL pipelines do'
        )

    @classmethod
    def control_kwargs(cls, image: Any, scale: float) -> dict[str, Any]:
        """The ControlNet pipeline's arguments for its condition."""
        return dict(control_image=image, controlnet_conditioning_scale=scale)

    @classmethod
    def no_input_image(cls, field: str) -> str:
        """The line for an input image given to a family that edits none."""
        return (
            f'{field}: {cls.pipeline_class} edits no input image; a FLUX.1 '
            'Kontext config does'
        )

    @classmethod
    def input_image_kwargs(
        cls, pipe: Any, image: Any, height: int | None, width: int | None
    ) -> dict[str, Any]:
        """The pipeline's arguments for the image to edit (``--input-image``;
        ``None``: none given): an error for families that edit none."""
        if image is not None:
            raise UserError(cls.no_input_image('input_image'))
        return {}

    @classmethod
    def pipeline_call_kwargs(cls, settings: dict) -> dict[str, Any]:
        """Pipeline arguments of this family beyond the common ones, from its
        config entry ``settings`` (``model.family``)."""
        return {
            name: settings.get(name, cls.call_settings[name])
            for name in cls.call_settings
        }
