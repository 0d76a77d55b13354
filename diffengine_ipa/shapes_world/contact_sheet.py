"""A contact sheet of shapes-world adapters: reference | scale 0 | scale 1.

Generated as ``tools/infer.py`` generates (:class:`IPAdapterInferencer`: the
family's diffusers pipeline, the converted file loaded by
``load_ip_adapter``), with the config's settings: an empty prompt, 20
steps, the family's default guidance, 32 px. Each image is labelled with
what the world's judge reads in it.
"""

import json
import os
import os.path as osp

from PIL import Image

from ..errors import UserError
from ..kit_files import kit_path
from . import world

__all__ = [
    'SHIPPED_ADAPTERS',
    'contact_sheet_for',
    'find_adapter',
    'write_contact_sheets',
]

# Adapters trained by the shapes_<family> configs, converted, fp32.
SHIPPED_ADAPTERS = kit_path('data', 'shapes_world', 'adapters')


def find_adapter(family: str, work_dirs: str = 'work_dirs') -> str:
    """The family's adapter: yours (``work_dirs/shapes_<family>``,
    converted), else the one shipped in ``data/shapes_world/adapters``."""
    for path in (
        osp.join(work_dirs, f'shapes_{family}', 'ip_adapter.safetensors'),
        osp.join(SHIPPED_ADAPTERS, f'{family}.safetensors'),
    ):
        if osp.isfile(path):
            return path
    raise UserError(
        f'no shapes-world adapter for {family}: train one with "mim train '
        f'diffengine_ipa configs/ip_adapter/shapes_{family}.py" then "python '
        f'tools/convert.py work_dirs/shapes_{family}"'
    )


def contact_sheet_for(
    family: str, world_dir: str, adapter: str, cases: int = 6, cell: int = 96
) -> Image.Image:
    """Rows: the quick held-out references; columns: the reference, the
    output at scale 0 and at scale 1, each labelled with the judge's reading.

    Args:
        family: ``sd15``, ``sdxl``, ``sd35`` or ``flux``.
        world_dir: The world folder (its bases and ``heldout/``).
        adapter: The converted adapter file.
        cases: How many quick references (rows).
        cell: Thumbnail side in pixels.
    """
    from ..apis.batch_jobs import contact_sheet
    from ..apis.inferencer import IPAdapterInferencer

    base = osp.join(world_dir, family)
    config = kit_path('configs', 'ip_adapter', f'shapes_{family}.py')
    inferencer = IPAdapterInferencer(
        config,
        adapter,
        device='cpu',
        cfg_options={
            'model.pretrained_model_name_or_path': base,
            'model.image_encoder.pretrained_model_name_or_path': osp.join(
                base, 'image_encoder'
            ),
        },
    )
    with open(osp.join(world_dir, 'heldout', 'cases.json')) as f:
        chosen = [c for c in json.load(f) if c.get('quick')][:cases]
    tiles = []
    for case in chosen:
        reference = Image.open(
            osp.join(world_dir, 'heldout', case['image_file'])
        ).convert('RGB')
        tiles.append((f'ref: {_reading(reference)}', reference))
        for scale in (0.0, 1.0):
            (image,) = inferencer('', reference, scale=scale, seed=0)
            tiles.append((f'{scale:g}: {_reading(image)}', image))
    return contact_sheet(tiles, cell=cell, columns=3)


def write_contact_sheets(
    world_dir: str,
    out_dir: str,
    families: tuple[str, ...] = ('sd15', 'flux'),
    work_dirs: str = 'work_dirs',
) -> tuple[list[str], list[str]]:
    """One sheet per family that has an adapter,
    ``<out_dir>/contact_sheet_<family>.png``.

    Returns:
        The sheets written, and for each family without an adapter the line
        that says how to make one.

    Raises:
        UserError: when no family has an adapter.
    """
    os.makedirs(out_dir, exist_ok=True)
    written, missing = [], []
    for family in families:
        try:
            adapter = find_adapter(family, work_dirs)
        except UserError as err:
            missing.append(str(err))
            continue
        sheet = contact_sheet_for(family, world_dir, adapter)
        written.append(osp.join(out_dir, f'contact_sheet_{family}.png'))
        sheet.save(written[-1])
    if not written:
        raise UserError('; '.join(missing))
    return written, missing


def _reading(image: Image.Image) -> str:
    hue, shape = world.classify(image)
    return f'{hue} {shape}' if hue else 'no shape'
