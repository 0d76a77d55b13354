"""IPAdapterInferencer: generate with trained adapters, built once, called
many times (the MMEngine / mmpretrain inferencer pattern)."""

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.config import Config
from PIL import Image

from ..dtypes import to_dtype
from ..errors import UserError
from ..image_io import read_rgb_image
from ..models.families import family_class
from .inference import AdapterSpec, generation_settings, load_pipeline

__all__ = [
    'IPAdapterInferencer',
    'best_device',
    'save_image_embeds',
    'load_image_embeds',
    'face_prompt',
]


def best_device() -> str:
    """CUDA, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return 'cuda'
    if getattr(torch.backends, 'mps', None) and torch.backends.mps.is_available():
        return 'mps'
    return 'cpu'


def _read(value: Any) -> Any:
    """Paths → RGB images, through lists (one-line errors for bad files)."""
    if value is None or isinstance(value, Image.Image):
        return value
    if isinstance(value, (list, tuple)):
        return [_read(item) for item in value]
    return read_rgb_image(str(value))


def save_image_embeds(path: str, embeds: Sequence[torch.Tensor]) -> None:
    """Save precomputed image features (one tensor per adapter)."""
    from safetensors.torch import save_file

    from ..fileio import atomic_path

    with atomic_path(path) as tmp:
        save_file(
            {
                f'adapter_{i}': e.detach().cpu().contiguous()
                for i, e in enumerate(embeds)
            },
            tmp,
        )


def load_image_embeds(path: str) -> list[torch.Tensor]:
    """Image features saved by :func:`save_image_embeds`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except (SafetensorError, OSError) as err:
        raise UserError(f'{path}: not a saved image-embeddings file ({err})') from None
    return [tensors[f'adapter_{i}'] for i in range(len(tensors))]


def face_prompt(
    face: str | None = None,
    face_embeds: str | None = None,
    face_image: Any = None,
    embedder: str | dict | None = None,
    dim: int | None = None,
) -> tuple[list[torch.Tensor], Any]:
    """FaceID's image prompt, ``([embedding (N, 512)], crop)``: the ``image_embeds``
    and ``face_image`` of a call. From a photo, ``face`` (its one face
    detected, aligned and embedded by ``embedder``, the one the data was
    prepared with; the crop too unless ``face_image`` is given), or from a
    saved embedding, ``face_embeds`` (a ``.npy``, (512,) or (N, 512), as
    ``tools/prepare_faces.py`` writes; ``face_image`` its crop). ``dim``: the
    width the model reads (its projection's ``id_embed_dim``; default 512).

    Raises:
        UserError: one line for a photo without a face or with several, and
            for a file that is not a face embedding.
    """
    import numpy as np

    from ..faces import EMBEDDING_DIM, get_face_embedder

    if bool(face) == bool(face_embeds):
        raise UserError(
            'FaceID: give a face photo or saved face embeddings (.npy), one of them'
        )
    crop = _read(face_image)
    dim = dim or EMBEDDING_DIM
    if face_embeds:
        try:
            embedding = np.load(face_embeds, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise UserError(
                f'{face_embeds}: not a .npy face embedding ({err})'
            ) from None
        if embedding.ndim not in (1, 2) or embedding.shape[-1] != dim:
            raise UserError(
                f'{face_embeds}: a face embedding is ({dim},) or (N, {dim}), '
                f'not {embedding.shape}'
            )
        return [torch.from_numpy(np.atleast_2d(embedding).astype(np.float32))], crop
    if isinstance(embedder, str):
        embedder = dict(type=embedder)
    faces = get_face_embedder(embedder).faces(read_rgb_image(face))
    if not faces:
        raise UserError(f'{face}: no face found (give a photo with one face)')
    if len(faces) > 1:
        raise UserError(
            f'{face}: several faces: {len(faces)} found, one is wanted '
            '(crop the photo to one face)'
        )
    embedding = torch.from_numpy(np.asarray(faces[0].embedding, np.float32))[None]
    return [embedding], crop if crop is not None else faces[0].crop


class IPAdapterInferencer:
    """Generate with one or more trained adapters.

    The base model, the adapters and their image encoders are loaded once,
    on the best device; each call generates.

    Args:
        config: A config file (or a loaded config): the family, base model,
            image encoder and generation defaults.
        adapters: One adapter or several: paths (``PATH[:SCALE][@ENCODER]``)
            or :class:`AdapterSpec`.
        base_model: Another base checkpoint of the same family: a folder, a
            Hub id, or a single ``.safetensors`` fine-tuned from the base.
        controlnet: A ControlNet of the family (folder or Hub id).
        device: Default: CUDA, MPS or the CPU, the first there is.
        dtype: Default: the family's on CUDA (fp16 SD1.5/SDXL, bf16
            SD3.5/FLUX.1), fp32 elsewhere.
        cfg_options: Overrides of config entries.

    Example:
        >>> inferencer = IPAdapterInferencer(
        ...     'configs/ip_adapter/sdxl_mini_dataset.py',
        ...     ['style.safetensors:0.6', 'face.safetensors:0.8'])
        >>> images = inferencer('a portrait', ['style.jpg', 'face.jpg'], seed=1)
    """

    def __init__(
        self,
        config: str | Config,
        adapters: str | AdapterSpec | Sequence[str | AdapterSpec],
        base_model: str | None = None,
        controlnet: str | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        cfg_options: dict | None = None,
    ) -> None:
        from ..user_config import load_user_config

        cfg = (
            config
            if isinstance(config, Config)
            else load_user_config(config, cfg_options)
        )
        if isinstance(adapters, (str, AdapterSpec)):
            adapters = [adapters]
        self.adapters = [
            a if isinstance(a, AdapterSpec) else AdapterSpec.parse(a) for a in adapters
        ]
        family = family_class(cfg.model)
        self.device = device or best_device()
        self.dtype = to_dtype(
            dtype
            or (
                family.generation.inference_dtype
                if self.device.startswith('cuda')
                else 'fp32'
            )
        )
        self.defaults = generation_settings(cfg.model)
        self.pipeline = load_pipeline(
            cfg.model, self.adapters, self.device, self.dtype, base_model, controlnet
        )

    def encode(self, images: Any, adapter: int = 0) -> torch.Tensor:
        """The features adapter ``adapter`` reads from reference images
        (paths or PIL): what ``image_embeds`` takes; see
        :func:`save_image_embeds`."""
        return self.pipeline.encode(_read(images), adapter)

    def __call__(
        self,
        prompt: str = '',
        images: Any = None,
        *,
        scale: Any = None,
        negative_prompt: str | None = None,
        negative_images: Any = None,
        masks: Any = None,
        image_embeds: Sequence[torch.Tensor] | None = None,
        control_image: Any = None,
        control_scale: float = 1.0,
        steps: int | None = None,
        guidance_scale: float | None = None,
        true_cfg_scale: float | None = None,
        input_image: Any = None,
        face_image: Any = None,
        s_scale: float | None = None,
        lora_scale: float = 1.0,
        seed: int = 0,
        num_images: int = 1,
        height: int | None = None,
        width: int | None = None,
    ) -> list[Image.Image]:
        """Generate ``num_images`` images for ``prompt``.

        Args:
            prompt: The text prompt.
            images: Reference image(s) (paths or PIL): one, or a list (several
                references for one adapter); with several adapters, one of
                those per adapter.
            scale: Default: each adapter's own. A float, one per adapter, the
                family's per-block form, or a preset (``'style'``,
                ``'layout'``, ``'style_and_layout'``: SDXL).
            negative_prompt: Default: the config's or family's.
            negative_images: Images whose features are the unconditional
                image prompt (per adapter, like ``images``).
            masks: Region masks (white = where a reference applies), one per
                reference, per adapter like ``images``.
            image_embeds: Precomputed features per adapter, instead of images.
            control_image: The ControlNet's condition image.
            control_scale: The ControlNet's conditioning scale.
            steps, guidance_scale, height, width: Default: the config's
                ``generation_cfg``, else the family's.
            true_cfg_scale: FLUX-type bases: true CFG against
                ``negative_prompt`` (give ``''`` for the empty prompt) and the
                negative image embedding, as ``FluxPipeline`` (> 1 with a
                negative prompt); default: the config's. An error for
                other families.
            input_image: FLUX.1 Kontext: the image to edit (a path or PIL),
                resized to the generated size; an error for other families.
            face_image: FaceID-Plus / PlusV2: the aligned face crop the image
                encoder reads (FaceID's ``image_embeds`` are the face
                embeddings, (N, 512)).
            s_scale: FaceID-PlusV2's shortcut scale (default: 1.0).
            lora_scale: Strength of FaceID's UNet attention LoRA.
            seed: Seed of ``torch.Generator(device)``.
            num_images: Images to make.
        """
        given = dict(
            steps=steps,
            guidance_scale=guidance_scale,
            negative_prompt=negative_prompt,
            height=height,
            width=width,
            true_cfg_scale=true_cfg_scale,
        )
        settings = dict(self.defaults)
        settings.update({k: v for k, v in given.items() if v is not None})
        if scale is None:
            scales = [spec.scale for spec in self.adapters]
            scale = scales[0] if len(scales) == 1 else scales
        return self.pipeline(
            _read(images),
            prompt,
            settings['negative_prompt'],
            scale,
            settings['steps'],
            settings['guidance_scale'],
            seed,
            num_images,
            settings['height'],
            settings['width'],
            image_embeds=image_embeds,
            negative_reference=_read(negative_images),
            masks=_read(masks),
            control_image=_read(control_image),
            control_scale=control_scale,
            true_cfg_scale=settings.get('true_cfg_scale'),
            input_image=_read(input_image),
            face_image=_read(face_image),
            s_scale=s_scale,
            lora_scale=lora_scale,
        )
