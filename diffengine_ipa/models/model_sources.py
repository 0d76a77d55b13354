"""Load the frozen components of a model from where the config says they are.

A source is either a Hugging Face Hub id or a local folder (loaded with the
class's own ``from_pretrained``), or ``random:<architecture>``: a registered
architecture built from config with random weights (see
:mod:`diffengine_ipa.models.random_models.architectures`), for tests and benchmarks that
need no weights.
"""

import os
import os.path as osp
import re
from typing import Any

from ..errors import ModelSourceError

__all__ = [
    'RANDOM_PREFIX',
    'load_component',
    'load_scheduler_config',
    'resolve_file',
    'disable_progress_bars',
]

RANDOM_PREFIX = 'random:'


_HUB_ID = re.compile(r'^[\w-][\w.-]*(/[\w.-]+)?$')


def _is_hub_id(source: str) -> bool:
    """``name`` or ``owner/name`` whose first part is not a local folder."""
    return bool(_HUB_ID.match(source)) and not osp.exists(source.split('/')[0])


def _explain(source: str, subfolder: str | None, field: str, err: Exception) -> str:
    what = f"'{subfolder}' of " if subfolder else ''
    reason = (
        str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    )
    fix = f'point `{field}` at a local folder: --cfg-options {field}=/path/to/folder'
    if osp.isdir(source):
        return (
            f'could not load {what}local folder {osp.abspath(source)} '
            f'({reason}); the folder must hold a complete '
            f"'{subfolder or 'model'}' (config and weights)"
        )
    if not _is_hub_id(source):
        return (
            f'{field}: no folder {osp.abspath(source)}. For the tiny '
            'demo write it with `python tools/make_tiny_models.py`; '
            f'otherwise {fix}'
        )
    offline = os.environ.get('HF_HUB_OFFLINE', '0') not in ('0', '', 'false')
    why = (
        'the Hub is disabled (HF_HUB_OFFLINE=1)'
        if offline
        else 'the Hub could not be reached or has no such repo'
    )
    return (
        f'could not load {what}{source!r} given as {field}: it is not in '
        f'the local Hugging Face cache and {why} ({reason}). Download it '
        f'where there is network (`hf download {source}`) or {fix}'
    )


def folder_kind(folder: str) -> tuple[str, str] | None:
    """What a local model folder holds, as ``(class name, kind)``: a
    diffusers pipeline (``model_index.json``), a diffusers model
    (``config.json`` with ``_class_name``) or a transformers model
    (``config.json`` with ``architectures``); ``None`` when it says not."""
    import json

    for name, key, kind in (
        ('model_index.json', '_class_name', 'diffusers pipeline'),
        ('config.json', '_class_name', 'diffusers model'),
        ('config.json', 'architectures', 'transformers model'),
    ):
        try:
            with open(osp.join(folder, name), encoding='utf-8') as f:
                config = json.load(f)
        except (OSError, ValueError):
            continue
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, list):
            value = value[0] if value and isinstance(value[0], str) else None
        if isinstance(value, str):
            return value, kind
    return None


def _wrong_kind(cls: type, source: str, subfolder: str | None, field: str) -> None:
    """One line when a local folder holds a model of another kind than
    ``cls`` (a UNet given as ControlNet, an image encoder as base model)."""
    folder = osp.join(source, subfolder) if subfolder else source
    if not osp.isdir(folder):
        return
    found = folder_kind(folder)
    if found is None:
        return
    name, kind = found
    wanted_pipeline = hasattr(cls, 'from_pipe') or cls.__name__.endswith('Pipeline')
    wanted_diffusers = cls.__module__.startswith('diffusers')
    if wanted_pipeline:
        ok = kind == 'diffusers pipeline'
    elif wanted_diffusers:
        ok = kind == 'diffusers model' and name == cls.__name__
    else:  # transformers: any class of the same model family loads
        ok = kind == 'transformers model'
    if ok:
        return
    if wanted_pipeline:
        wanted = f'a whole {cls.__name__} folder (with model_index.json)'
    else:
        wanted = f'a {cls.__name__}'
    parent = osp.dirname(osp.abspath(folder))
    hint = (
        '; give the folder above it, which holds model_index.json'
        if wanted_pipeline and osp.isfile(osp.join(parent, 'model_index.json'))
        else ''
    )
    raise ModelSourceError(
        f'{field}: {osp.abspath(folder)} holds {name} (a {kind}), not {wanted}{hint}'
    )


def load_component(
    cls: type,
    source: str,
    subfolder: str | None = None,
    field: str = 'model.pretrained_model_name_or_path',
    component: str | None = None,
    **kwargs: Any,
) -> Any:
    """Load ``cls`` (a diffusers/transformers class) from ``source``.

    Args:
        cls: The class to load, e.g. ``UNet2DConditionModel``.
        source: Hub id, local folder, or ``random:<architecture>`` (a
            component, or for a pipeline class all of them).
        subfolder: The component's folder inside a diffusers layout
            (``unet``, ``vae``, ...); None for a model folder of its own.
        field: The config field that holds ``source``, named in errors.
        component: The family component a ``random:`` source builds
            (default: ``subfolder``).
        **kwargs: Passed on to ``from_pretrained``.

    Raises:
        ModelSourceError: one line naming the path tried and how to fix it.
    """
    if source.startswith(RANDOM_PREFIX):
        from .random_models.builders import build_component, build_pipeline

        architecture = source[len(RANDOM_PREFIX) :]
        try:
            if (
                component is None and subfolder is None and hasattr(cls, 'from_pipe')
            ):  # a whole diffusers pipeline
                return build_pipeline(architecture, cls, kwargs.get('dtype'))
            return build_component(architecture, component or subfolder, cls)
        except KeyError as err:
            raise ModelSourceError(f'{field}: {err.args[0]}') from None
    _wrong_kind(cls, source, subfolder, field)
    return _load_with_errors(cls.from_pretrained, source, subfolder, field, **kwargs)


def _load_with_errors(
    load: Any, source: str, subfolder: str | None, field: str, **kwargs: Any
) -> Any:
    """``load(source, subfolder=...)``; failures become one-line errors."""
    try:
        if subfolder is None:
            return load(source, **kwargs)
        return load(source, subfolder=subfolder, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelSourceError(_explain(source, subfolder, field, err)) from None


def load_scheduler_config(source: str) -> dict:
    """The base model's ``scheduler/`` config (its ``_class_name`` is the
    scheduler its pipeline generates with)."""
    if source.startswith(RANDOM_PREFIX):
        from .random_models.architectures import architecture_spec

        try:
            return dict(architecture_spec(source[len(RANDOM_PREFIX) :])['scheduler'])
        except KeyError as err:
            raise ModelSourceError(
                f'model.pretrained_model_name_or_path: {err.args[0]}'
            ) from None
    from diffusers import DDPMScheduler  # any scheduler reads the config file

    return dict(
        _load_with_errors(
            DDPMScheduler.load_config,
            source,
            'scheduler',
            'model.pretrained_model_name_or_path',
        )
    )


def resolve_file(spec: str, field: str) -> str:
    """A local file, or ``owner/repo/path/in/repo`` fetched with the Hub's
    download code (e.g. ``h94/IP-Adapter/models/ip-adapter_sd15.safetensors``)."""
    if osp.isfile(spec):
        return spec
    parts = spec.split('/')
    if len(parts) < 3 or osp.exists(parts[0]) or spec.startswith(('.', '/')):
        raise ModelSourceError(f'{field}: no file {osp.abspath(spec)}')
    from huggingface_hub import hf_hub_download

    repo, filename = '/'.join(parts[:2]), '/'.join(parts[2:])
    try:
        return hf_hub_download(repo_id=repo, filename=filename)
    except Exception as err:  # offline, no such repo or file, no network
        offline = os.environ.get('HF_HUB_OFFLINE', '0') not in ('0', '', 'false')
        why = (
            'the Hub is disabled (HF_HUB_OFFLINE=1)'
            if offline
            else str(err).strip().splitlines()[0][:160]
        )
        raise ModelSourceError(
            f'{field}: could not download {filename!r} from the Hub repo '
            f'{repo!r}: {why}. Download it where there is network (`hf '
            f'download {repo} {filename}`) and give the local path'
        ) from None


def disable_progress_bars() -> None:
    """Keep diffusers' and transformers' loading bars out of training logs."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
