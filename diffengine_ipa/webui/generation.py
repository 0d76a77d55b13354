"""The Generate tab: :class:`~diffengine_ipa.apis.IPAdapterInferencer`, one
per (config, adapter, options), loaded once and called many times.

With the same inputs and seed the page's image is ``tools/infer.py``'s: both
are the inferencer's call with the same arguments. A FaceID config generates
from a face photo or saved face embeddings, as ``--face`` / ``--face-embeds``
(:func:`~diffengine_ipa.apis.face_prompt`).
"""

import os.path as osp
import threading
import time
from collections import OrderedDict
from typing import Any

from ..errors import UserError
from . import kit
from .base_models import model_options
from .family_choices import all_scale_presets, config_faceid
from .workspace import Workspace

__all__ = [
    'InferencerCache',
    'generate',
    'scale_argument',
    'generation_defaults',
    'face_fields',
]


def scale_argument(scale: float, preset: str = 'scale') -> Any:
    """The inferencer's ``scale``: the slider's float, or a preset's name
    (one some registered family has; the config's family checks its own)."""
    if preset in (None, '', 'scale'):
        from ..apis.inference import parse_scale

        return parse_scale(float(scale), 'scale')
    known = all_scale_presets()
    if preset not in known:
        raise UserError(f'preset {preset!r}: one of {", ".join(known)}')
    return preset


def generation_defaults(config: str) -> dict[str, Any]:
    """Steps, guidance, negative prompt and size that ``config`` generates
    with (its ``generation_cfg``, else its family's)."""
    from ..apis.inference import generation_settings

    return generation_settings(kit.read_config(config).model)


def face_fields(config: str) -> dict[str, bool]:
    """Which FaceID fields config ``config`` takes: ``face`` (a photo or
    embeddings, the embedder, the LoRA scale), ``crop`` (Plus and PlusV2
    read the aligned crop with saved embeddings), ``s_scale`` (PlusV2)."""
    faceid = config_faceid(config)
    return dict(
        face=bool(faceid),
        crop=bool(faceid) and faceid != 'FaceID',
        s_scale=faceid == 'FaceID-PlusV2',
    )


class InferencerCache:
    """Inferencers by (config, adapter file and its mtime, options); the
    least recently used goes when more than ``size`` are loaded. One
    generation at a time (they share the CPU or GPU)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self.lock = threading.Lock()
        self.loads = 0  # how many inferencers were built

    def get(self, config: str, adapter: str, options: dict[str, Any]) -> Any:
        """The inferencer for these, built on first use."""
        key = (
            config,
            adapter,
            osp.getmtime(adapter),
            tuple(sorted((k, repr(v)) for k, v in options.items())),
        )
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        from ..apis import IPAdapterInferencer
        from ..apis.inference import AdapterSpec

        while len(self._items) >= self.size:
            self._items.popitem(last=False)
        inferencer = IPAdapterInferencer(
            kit.config_path(config), [AdapterSpec(adapter)], cfg_options=options
        )
        self.loads += 1
        self._items[key] = inferencer
        return inferencer


def generate(
    ws: Workspace,
    cache: InferencerCache,
    config: str,
    adapter: str,
    references: list[str],
    prompt: str = '',
    negative_prompt: str = '',
    scale: float = 1.0,
    preset: str = 'scale',
    steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int = 0,
    num_images: int = 1,
    base_model: str = '',
    image_encoder: str = '',
    true_cfg_scale: float | None = None,
    face: str = '',
    face_embeds: str = '',
    face_image: str = '',
    face_embedder: str = '',
    s_scale: float | None = None,
    lora_scale: float = 1.0,
) -> list[str]:
    """Generate and save PNGs under ``outputs/generate/``; their paths.

    Args:
        ws: The workspace.
        cache: Where the inferencers stay loaded.
        config: A config name (the family, base model, image encoder).
        adapter: A checkpoint, work dir or adapter file in the workspace.
        references: Reference images in the workspace (one adapter's).
        prompt: The text prompt.
        negative_prompt: '' = the config's or family's.
        scale: The image prompt's strength (0 = text only).
        preset: ``'scale'`` (use ``scale``), or ``'style'``, ``'layout'``,
            ``'style_and_layout'`` (InstantStyle, SDXL).
        steps, guidance_scale: ``None`` = the config's or family's.
        seed: The generator's seed.
        num_images: How many images.
        base_model, image_encoder: Local model folders in the workspace
            ('' = the config's).
        true_cfg_scale: FLUX-type bases: true CFG (> 1) against the
            negative prompt, '' when none is typed; ``None`` or 0 = off.
        face, face_embeds, face_image: FaceID (instead of references): a
            photo with one face, or saved embeddings (``.npy``) and, for
            Plus/PlusV2, the aligned crop; in the workspace.
        face_embedder: The embedder that finds the photo's face, the one
            the data was prepared with ('' = insightface's).
        s_scale: FaceID-PlusV2's shortcut scale (ignored by the others).
        lora_scale: Strength of FaceID's UNet attention LoRA.
    """
    if not adapter:
        raise UserError('choose an adapter (train one, or put a file under adapters/)')
    faceid = config_faceid(config)
    if not (references or faceid):
        raise UserError('give at least one reference image')
    adapter_path = ws.resolve(adapter, must_exist=True)
    images = [[ws.resolve(r, must_exist=True) for r in references]]
    face_call = {}
    if faceid:  # as tools/infer.py --face / --face-embeds
        from ..apis import face_prompt

        given = [
            ws.resolve(p, must_exist=True) if p else None
            for p in (face, face_embeds, face_image)
        ]
        embeds, crop = face_prompt(*given, face_embedder or None)
        images, face_call = (
            None,
            dict(image_embeds=embeds, face_image=crop, lora_scale=float(lora_scale)),
        )
    options = model_options(ws, config, base_model, image_encoder)
    true_cfg_scale = float(true_cfg_scale) if true_cfg_scale else None
    if true_cfg_scale and true_cfg_scale > 1 and not negative_prompt:
        negative_prompt = ''  # true CFG against the empty prompt
    else:
        negative_prompt = negative_prompt or None
    with cache.lock:
        inferencer = cache.get(config, adapter_path, options)
        if inferencer.pipeline.prompts[0].faceid == 'FaceID-PlusV2':
            face_call['s_scale'] = None if s_scale is None else float(s_scale)
        outputs = inferencer(
            prompt or '',
            images,
            scale=scale_argument(scale, preset),
            negative_prompt=negative_prompt,
            steps=steps or None,
            guidance_scale=guidance_scale,
            true_cfg_scale=true_cfg_scale,
            seed=int(seed),
            num_images=int(num_images),
            **face_call,
        )
    out_dir = ws.folder('outputs', 'generate')
    stamp = time.strftime('%Y%m%d_%H%M%S')
    paths = []
    for i, image in enumerate(outputs):
        path = osp.join(out_dir, f'{stamp}_seed{int(seed)}_{i}.png')
        n = 1
        while osp.exists(path):
            path = osp.join(out_dir, f'{stamp}_seed{int(seed)}_{i}_{n}.png')
            n += 1
        image.save(path)
        paths.append(path)
    return paths
