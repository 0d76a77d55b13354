"""Two or more adapters on the same evaluation cases: one table, side-by-side
grids, one trade-off plot."""

import json
import os.path as osp
from typing import Any

from PIL import Image, ImageDraw

from ..fileio import atomic_write_bytes
from ..image_io import read_rgb_image
from .report import FACE_COLUMNS, SCORE_COLUMNS, face_cells, score_cells
from .tradeoff_plot import plot_tradeoff

__all__ = ['compare_reports', 'format_comparison']


def _side_by_side(
    reports: dict[str, dict], scale: str, cell: int = 256, header: int = 28
) -> Image.Image:
    """Rows = cases; columns = reference | each adapter's image at ``scale``
    (the first seed)."""
    names = list(reports)
    cases = next(iter(reports.values()))['cases']
    grid = Image.new(
        'RGB', (cell * (1 + len(names)), header + cell * len(cases)), 'white'
    )
    draw = ImageDraw.Draw(grid)
    for x, title in enumerate(['reference', *names]):
        draw.text((x * cell + 8, 8), f'{title[:28]}', fill='black')
    for y, case in enumerate(cases):
        top = header + y * cell
        grid.paste(read_rgb_image(case['reference']).resize((cell, cell)), (0, top))
        for x, name in enumerate(names, start=1):
            match = [c for c in reports[name]['cases'] if c['id'] == case['id']]
            images = match[0]['scales'].get(scale, {}).get('images') if match else None
            if images:
                image = Image.open(images[0]).convert('RGB')
                grid.paste(image.resize((cell, cell)), (x * cell, top))
    return grid


def format_comparison(comparison: dict[str, Any]) -> str:
    """A console table: one line per adapter, overall scores (with face
    similarity and misses when the reports have them)."""
    faces = any('face_similarity' in s for s in comparison['overall'].values())
    lines = [f'{"adapter":<32}{SCORE_COLUMNS}' + (FACE_COLUMNS if faces else '')]
    for name, s in comparison['overall'].items():
        line = f'{name[:32]:<32}{score_cells(s)}'
        if faces:
            line += face_cells(s, no_misses='-')
        lines.append(line)
    return '\n'.join(lines)


def compare_reports(reports: dict[str, dict[str, Any]], out_dir: str) -> dict[str, Any]:
    """Write ``comparison.json``, ``comparison_grid_scale<S>.png`` per scale
    and ``comparison_tradeoff.png`` for reports of the same cases."""
    scales = sorted(next(iter(reports.values()))['per_scale'], key=float)
    grids = []
    for scale in scales:
        grids.append(osp.join(out_dir, f'comparison_grid_scale{scale}.png'))
        _side_by_side(reports, scale).save(grids[-1])
    plot = plot_tradeoff(reports, osp.join(out_dir, 'comparison_tradeoff.png'))
    comparison = dict(
        adapters={name: r.get('checkpoint') for name, r in reports.items()},
        overall={name: r['overall'] for name, r in reports.items()},
        per_scale={name: r['per_scale'] for name, r in reports.items()},
        grids=grids,
        tradeoff_plot=plot,
    )
    atomic_write_bytes(
        osp.join(out_dir, 'comparison.json'), json.dumps(comparison, indent=2).encode()
    )
    return comparison
