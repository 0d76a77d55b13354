"""Batch generation from a JSON Lines file: one generation per line.

Each line is an object with ``prompt`` and ``image`` (a path or a list of
paths; with several adapters, one of those per adapter), and optionally
``scale``, ``seed``, ``negative_prompt``, ``negative_image``, ``mask``,
``steps``, ``guidance_scale``, ``true_cfg_scale`` (FLUX-type bases),
``num_images``, ``height``, ``width`` and ``name``. Paths are relative to
the jobs file. A line that cannot run is reported with its number and the
others still run.
"""

import json
import math
import os
import os.path as osp
import re
from typing import Any

from PIL import Image, ImageDraw

from ..errors import UserError

__all__ = ['JOB_KEYS', 'read_jobs', 'run_jobs', 'contact_sheet']

# A line's keys → the inferencer's arguments.
JOB_KEYS = dict(
    prompt='prompt',
    image='images',
    scale='scale',
    seed='seed',
    negative_prompt='negative_prompt',
    negative_image='negative_images',
    mask='masks',
    steps='steps',
    guidance_scale='guidance_scale',
    true_cfg_scale='true_cfg_scale',
    num_images='num_images',
    height='height',
    width='width',
    name=None,
)
PATH_KEYS = ('image', 'negative_image', 'mask')


def _relative_to(folder: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_relative_to(folder, item) for item in value]
    return value if osp.isabs(value) else osp.join(folder, value)


_COUNTS = {'steps': 1, 'num_images': 1, 'height': 1, 'width': 1, 'seed': 0}
_TEXTS = ('prompt', 'negative_prompt', 'name')


def _shown(value: Any) -> str:
    return json.dumps(value)[:60]


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _value_problem(key: str, value: Any) -> str | None:
    """Why a job line's ``key`` cannot be ``value`` (None when it can)."""
    if key in PATH_KEYS:
        paths = value if isinstance(value, list) else [value]
        if not value or not all(isinstance(p, str) and p.strip() for p in paths):
            return f'"{key}" must be a path or a list of paths, got {_shown(value)}'
    elif key in _COUNTS:
        least = _COUNTS[key]
        if not (
            isinstance(value, int) and not isinstance(value, bool) and value >= least
        ):
            return (
                f'"{key}" must be an integer of at least {least}, got {_shown(value)}'
            )
    elif key == 'guidance_scale' and not _is_number(value):
        return f'"{key}" must be a finite number, got {_shown(value)}'
    elif key in _TEXTS and not isinstance(value, str):
        return f'"{key}" must be text, got {_shown(value)}'
    elif key == 'scale':
        scales = value if isinstance(value, list) else [value]
        if (
            not value
            and value != 0
            or not all(
                isinstance(v, (str, dict)) or (_is_number(v) and v >= 0) for v in scales
            )
        ):
            return (
                f'"{key}" must be a number of at least 0 or a scale spec '
                f'(one per adapter), got {_shown(value)}'
            )
    return None


def read_jobs(path: str) -> tuple[list[tuple[int, dict]], list[str]]:
    """``([(line number, job)], [error lines])`` of a JSON Lines file."""
    from ..datasets.record_sources import decode_annotations

    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as err:
        raise UserError(f'{path}: cannot read the jobs file ({err.strerror})') from None
    lines = decode_annotations(raw, path).lstrip('\ufeff').splitlines()
    folder, jobs, errors = osp.dirname(osp.abspath(path)), [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            job = json.loads(line)
        except json.JSONDecodeError as err:
            errors.append(f'{path}:{number}: not JSON ({err.msg})')
            continue
        if not isinstance(job, dict) or 'image' not in job:
            errors.append(
                f'{path}:{number}: a job is an object with at least '
                '"prompt" and "image"'
            )
            continue
        unknown = sorted(set(job) - set(JOB_KEYS))
        if unknown:
            errors.append(
                f'{path}:{number}: unknown key {unknown[0]!r} (keys: '
                f'{", ".join(JOB_KEYS)})'
            )
            continue
        problem = next(
            filter(None, (_value_problem(k, v) for k, v in job.items())), None
        )
        if problem:
            errors.append(f'{path}:{number}: {problem}')
            continue
        for key in PATH_KEYS:
            if key in job:
                job[key] = _relative_to(folder, job[key])
        jobs.append((number, job))
    return jobs, errors


def _label(job: dict, number: int) -> str:
    name = job.get('name') or job.get('prompt', '') or 'job'
    return f'{number:04d}_' + re.sub(r'[^A-Za-z0-9_-]+', '_', name)[:40].strip('_')


def contact_sheet(
    images: list[tuple[str, Image.Image]],
    cell: int = 192,
    columns: int = 4,
    header: int = 18,
) -> Image.Image:
    """A grid of ``(label, image)`` thumbnails."""
    columns = max(1, min(columns, len(images)))
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new('RGB', (columns * cell, rows * (cell + header)), 'white')
    draw = ImageDraw.Draw(sheet)
    for index, (label, image) in enumerate(images):
        x, y = index % columns * cell, index // columns * (cell + header)
        draw.text((x + 4, y + 3), label[:30], fill='black')
        sheet.paste(image.convert('RGB').resize((cell, cell)), (x, y + header))
    return sheet


def run_jobs(inferencer: Any, path: str, out_dir: str) -> dict[str, Any]:
    """Run every job of ``path``; images and ``contact_sheet.png`` go to
    ``out_dir``. Returns the written paths and the failed lines' messages."""
    from mmengine.utils import ProgressBar

    jobs, errors = read_jobs(path)
    total = len(jobs) + len(errors)
    os.makedirs(out_dir, exist_ok=True)
    written: list[tuple[str, Image.Image]] = []
    progress = ProgressBar(len(jobs)) if jobs else None
    for number, job in jobs:
        kwargs = {JOB_KEYS[k]: v for k, v in job.items() if JOB_KEYS[k]}
        try:
            images = inferencer(**kwargs)
        except (UserError, ValueError, TypeError) as err:
            errors.append(f'{path}:{number}: {str(err).splitlines()[0]}')
        else:
            for index, image in enumerate(images):
                label = _label(job, number) + (f'_{index}' if len(images) > 1 else '')
                image.save(osp.join(out_dir, f'{label}.png'))
                written.append((label, image))
        progress.update()
    sheet = None
    if written:
        sheet = osp.join(out_dir, 'contact_sheet.png')
        contact_sheet(written).save(sheet)
    return dict(
        images=[osp.join(out_dir, f'{label}.png') for label, _ in written],
        contact_sheet=sheet,
        errors=errors,
        jobs=total,
    )
