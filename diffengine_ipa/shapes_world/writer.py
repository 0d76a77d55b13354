"""Write the shapes world to disk: pretraining images, adapter pairs and the
held-out references, in the kit's ``data.json`` record format.

Layout under ``out`` (default ``work_dirs/shapes_world``)::

    pretrain/data.json  pretrain/images/*.png   "a red circle"
    pairs/data.json     pairs/images/*.png      "a circle" + reference_file
    pairs/edits.json    pairs/images/*_in.png   the same + input_file (Kontext)
    heldout/cases.json  heldout/images/*.png    evaluation cases, prompt ""
    heldout/edit_cases.json  heldout/images/*_in.png  the same + input_file
    world.json                                  what was written (seed, counts)

Each part draws from its own random stream of the seed, so the same seed
writes the same files, and no held-out scene is ever a training image.
A folder whose ``world.json`` matches the request is reused as it is.
"""

import json
import os
import os.path as osp
from itertools import product

import numpy as np

from ..fileio import atomic_write_bytes
from . import world

__all__ = ['WORLD_VERSION', 'write_world', 'world_spec']

WORLD_VERSION = 2  # 2: FLUX.1 Kontext's input images
_STREAMS = dict(pretrain=1, pairs=2, heldout=3, heldout_inputs=4)


def world_spec(
    seed: int = 0,
    size: int = world.DEFAULT_SIZE,
    pretrain: int = 6000,
    pairs: int = 3200,
    heldout_per_kind: int = 3,
) -> dict:
    """What :func:`write_world` writes, as recorded in ``world.json``."""
    return dict(
        version=WORLD_VERSION,
        seed=seed,
        size=size,
        pretrain=pretrain,
        pairs=pairs,
        heldout=heldout_per_kind * len(world.HUES) * len(world.SHAPES),
        hues=world.HUES,
        shapes=list(world.SHAPES),
    )


def write_world(
    out: str = 'work_dirs/shapes_world',
    seed: int = 0,
    size: int = world.DEFAULT_SIZE,
    pretrain: int = 6000,
    pairs: int = 3200,
    heldout_per_kind: int = 3,
) -> dict:
    """Write (or reuse) the world under ``out``.

    Args:
        out: The world's folder.
        seed: Decides every image.
        size: Image side in pixels.
        pretrain: Captioned images for pretraining the bases.
        pairs: Target/reference pairs for adapter training.
        heldout_per_kind: Held-out references per (hue, shape).

    Returns:
        The spec (``world.json``), with ``reused`` telling whether the
        folder already held it.
    """
    spec = world_spec(seed, size, pretrain, pairs, heldout_per_kind)
    manifest = osp.join(out, 'world.json')
    if osp.exists(manifest):
        with open(manifest) as f:
            if json.load(f) == spec:
                return dict(spec, reused=True)
    _write_pretrain(osp.join(out, 'pretrain'), _rng(seed, 'pretrain'), pretrain, size)
    _write_pairs(osp.join(out, 'pairs'), _rng(seed, 'pairs'), pairs, size)
    _write_heldout(
        osp.join(out, 'heldout'),
        _rng(seed, 'heldout'),
        _rng(seed, 'heldout_inputs'),
        heldout_per_kind,
        size,
    )
    _write_json(manifest, spec)  # last: a complete world
    return dict(spec, reused=False)


def _rng(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[part]])


def _write_pretrain(
    folder: str, rng: np.random.Generator, count: int, size: int
) -> None:
    records = []
    for i in range(count):
        scene = world.sample_scene(rng)
        name = f'images/{i:05d}.png'
        _save(world.render(scene, size), folder, name)
        records.append(
            dict(
                image_file=name,
                text=world.colour_caption(scene.hue, scene.shape),
                hue=scene.hue,
                shape=scene.shape,
            )
        )
    _write_json(osp.join(folder, 'data.json'), records)


def _write_pairs(folder: str, rng: np.random.Generator, count: int, size: int) -> None:
    """Caption names the shape only: the colour must come from the
    reference, which shows it at another place, size and lightness. The
    edit records add the target in grey as the image to edit (Kontext)."""
    records, edits = [], []
    for i in range(count):
        target = world.sample_scene(rng)
        reference = world.reference_scene(rng, target)
        image, ref = f'images/{i:05d}.png', f'images/{i:05d}_ref.png'
        given = f'images/{i:05d}_in.png'
        _save(world.render(target, size), folder, image)
        _save(world.render(reference, size), folder, ref)
        _save(world.render(world.uncoloured(target), size), folder, given)
        record = dict(
            image_file=image,
            reference_file=ref,
            text=world.shape_caption(target.shape),
            hue=target.hue,
            shape=target.shape,
        )
        records.append(record)
        edits.append(dict(record, input_file=given))
    _write_json(osp.join(folder, 'data.json'), records)
    _write_json(osp.join(folder, 'edits.json'), edits)


def _write_heldout(
    folder: str,
    rng: np.random.Generator,
    input_rng: np.random.Generator,
    per_kind: int,
    size: int,
) -> None:
    """Every (hue, shape) ``per_kind`` times: balanced, so chance is known.
    Six quick cases (every hue, every shape twice) for validation. The edit
    cases add an image to edit: the reference's shape, in grey, elsewhere
    (its own random stream, so the references are those of world 1)."""
    cases, edits = [], []
    for (s, shape), (h, hue) in product(enumerate(world.SHAPES), enumerate(world.HUES)):
        for j in range(per_kind):
            scene = world.sample_scene(rng, hue, shape)
            case_id = f'{hue}_{shape}_{j}'
            name = f'images/{case_id}.png'
            _save(world.render(scene, size), folder, name)
            cases.append(
                dict(
                    id=case_id,
                    image_file=name,
                    prompt='',
                    text=world.colour_caption(hue, shape),
                    hue=hue,
                    shape=shape,
                    quick=j == 0 and h % 3 == s,
                )
            )
            given = f'images/{case_id}_in.png'
            layout = world.reference_scene(input_rng, scene)
            _save(world.render(world.uncoloured(layout), size), folder, given)
            edits.append(dict(cases[-1], input_file=given))
    _write_json(osp.join(folder, 'cases.json'), cases)
    _write_json(osp.join(folder, 'edit_cases.json'), edits)


def _save(image, folder: str, name: str) -> None:
    path = osp.join(folder, name)
    os.makedirs(osp.dirname(path), exist_ok=True)
    image.save(path)


def _write_json(path: str, value) -> None:
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    atomic_write_bytes(path, json.dumps(value, indent=1).encode())
