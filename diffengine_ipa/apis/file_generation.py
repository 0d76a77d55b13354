"""Generate image files from one request: what ``tools/infer.py`` calls.

:func:`generate_files` reads the config and every image the request names
(a bad file stops it before any model loads), builds the
:class:`~diffengine_ipa.apis.IPAdapterInferencer`, and then either runs a
JSON Lines file of jobs (:func:`~diffengine_ipa.apis.run_jobs`) or makes one
generation, saving the references' embeddings first when asked. Each image is
written atomically: an interrupted run leaves no half-written file.
"""

import os.path as osp
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    'GenerationRequest',
    'GeneratedFiles',
    'generate_files',
    'per_adapter',
    'output_paths',
]


@dataclass
class GenerationRequest:
    """One run of ``tools/infer.py``: a field per option, the same name and
    default (see ``tools/infer.py --help``). ``image``, ``negative_image``
    and ``mask`` hold one entry per adapter: its paths, as a list or one
    comma-separated string."""

    config: str
    checkpoint: str
    adapter: list[str] = field(default_factory=list)
    image: list | None = None
    input_image: str | None = None
    prompt: str = 'best quality, high quality'
    negative_prompt: str | None = None
    scale: Any = None
    negative_image: list | None = None
    mask: list | None = None
    embeds: str | None = None
    face: str | None = None
    face_embeds: str | None = None
    face_image: str | None = None
    face_embedder: str = 'InsightFaceEmbedder'
    s_scale: float | None = None
    lora_scale: float = 1.0
    save_embeds: str | None = None
    base_model: str | None = None
    controlnet: str | None = None
    control_image: str | None = None
    control_scale: float = 1.0
    jobs: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    true_cfg_scale: float | None = None
    seed: int = 0
    num_images: int = 1
    height: int | None = None
    width: int | None = None
    out: str | None = None
    out_dir: str | None = None
    device: str | None = None
    dtype: str | None = None
    cfg_options: dict | None = None


@dataclass
class GeneratedFiles:
    """What :func:`generate_files` wrote."""

    images: list[str]
    embeds: str | None = None  # the saved embeddings (``save_embeds``)
    jobs: dict | None = None  # with ``jobs``: the summary of run_jobs


def per_adapter(values: list | None) -> list[list[str]] | None:
    """Each occurrence of a repeated option: one adapter's comma list."""
    if not values:
        return None
    return [
        [path for path in value.split(',') if path]
        if isinstance(value, str)
        else list(value)
        for value in values
    ]


def output_paths(request: GenerationRequest, references: list | None) -> list[str]:
    """The image files of a generation: ``out`` (default
    ``outputs/infer/<first reference>_seed<seed>.png``), numbered when it
    makes several images."""
    first = references[0][0] if references else (request.face or 'embeds')
    out = request.out or osp.join(
        'outputs',
        'infer',
        f'{osp.splitext(osp.basename(first))[0]}_seed{request.seed}.png',
    )
    if request.num_images == 1:
        return [out]
    stem, ext = osp.splitext(out)
    return [f'{stem}_{i}{ext}' for i in range(request.num_images)]


def generate_files(
    request: GenerationRequest, report: Callable[[str], None] = print
) -> GeneratedFiles:
    """Generate what ``request`` asks and write it; each file written is
    reported (``wrote PATH``) as it is written.

    Raises:
        UserError: one line for an option, file or model that cannot run.
    """
    from PIL import Image

    from ..cli import check_device, check_image_size
    from ..errors import UserError
    from ..fileio import atomic_path
    from ..image_io import read_rgb_image
    from ..models.families import family_class
    from ..models.generation import check_true_cfg
    from ..models.model_sources import disable_progress_bars
    from ..user_config import load_user_config
    from .batch_jobs import run_jobs
    from .inference import generation_settings, parse_scale
    from .inferencer import (
        IPAdapterInferencer,
        face_prompt,
        load_image_embeds,
        save_image_embeds,
    )

    if request.device:
        check_device(request.device)
    scale = parse_scale(request.scale, '--scale')
    cfg = load_user_config(request.config, request.cfg_options)
    family = family_class(cfg.model)
    check_true_cfg(family, request.true_cfg_scale, '--true-cfg-scale')
    if request.input_image and not family.generation.edits_input_image:
        raise UserError(family.generation.no_input_image('--input-image'))
    settings = generation_settings(
        cfg.model, height=request.height, width=request.width
    )
    check_image_size(
        settings['height'],
        settings['width'],
        family.generation.size_multiple,
        family.__name__,
    )
    references = per_adapter(request.image)
    negative_images = per_adapter(request.negative_image)
    masks = per_adapter(request.mask)
    paths = output_paths(request, references)
    images = {
        path: read_rgb_image(path)
        for option in (references, negative_images, masks)
        for adapter in option or []
        for path in adapter
    }
    for path in (request.control_image, request.input_image, request.face_image):
        if path:
            images[path] = read_rgb_image(path)
    embeds = load_image_embeds(request.embeds) if request.embeds else None
    face_image = images.get(request.face_image)
    if request.face or request.face_embeds:  # before the models load: quick
        projection = cfg.model.get('image_projection') or {}
        embeds, face_image = face_prompt(
            request.face,
            request.face_embeds,
            face_image,
            request.face_embedder,
            projection.get('id_embed_dim'),
        )
    disable_progress_bars()
    inferencer = IPAdapterInferencer(
        cfg,
        [request.checkpoint, *request.adapter],
        request.base_model,
        request.controlnet,
        request.device,
        request.dtype,
    )
    # Each denoising step on a bar with ETA (batch jobs have their own).
    inferencer.pipeline.pipe.set_progress_bar_config(
        disable=bool(request.jobs) or not sys.stderr.isatty(), leave=False
    )
    if request.jobs:
        out_dir = request.out_dir or osp.join(
            'outputs', 'jobs', osp.splitext(osp.basename(request.jobs))[0]
        )
        summary = run_jobs(inferencer, request.jobs, out_dir)
        return GeneratedFiles(images=summary['images'], jobs=summary)
    if request.save_embeds:
        # The generation takes these: the references are not encoded twice.
        embeds = [inferencer.encode(refs, i) for i, refs in enumerate(references)]
        save_image_embeds(request.save_embeds, embeds)
        report(f'wrote {request.save_embeds}')

    def read(option: list[list[str]] | None) -> list | None:
        return option and [[images[path] for path in adapter] for adapter in option]

    results = inferencer(
        request.prompt,
        read(references),
        scale=scale,
        negative_prompt=request.negative_prompt,
        negative_images=read(negative_images),
        masks=read(masks),
        image_embeds=embeds,
        control_image=images.get(request.control_image),
        control_scale=request.control_scale,
        steps=request.steps,
        guidance_scale=request.guidance_scale,
        true_cfg_scale=request.true_cfg_scale,
        input_image=images.get(request.input_image),
        face_image=face_image,
        s_scale=request.s_scale,
        lora_scale=request.lora_scale,
        seed=request.seed,
        num_images=request.num_images,
        height=request.height,
        width=request.width,
    )
    formats = Image.registered_extensions()
    for image, path in zip(results, paths, strict=True):
        with atomic_path(path) as tmp:
            image.save(tmp, format=formats[osp.splitext(path)[1].lower()])
        report(f'wrote {path}')
    return GeneratedFiles(images=paths, embeds=request.save_embeds)
