"""Summaries of an evaluation: per case and scale, aggregates, grids, a table.

Rows come from :class:`IPAdapterMetric`: one per generated image, with its
case, scale, seed, CLIP-I and CLIP-T cosines and CLIP embedding.
"""

import json
import os
import os.path as osp
from collections import defaultdict
from statistics import mean
from typing import Any

import torch
from PIL import Image, ImageDraw

from ..fileio import atomic_write_bytes
from ..image_io import read_rgb_image
from . import scores
from .tradeoff_plot import plot_tradeoff

__all__ = ['summarize', 'write_report', 'format_table', 'PERCENT_NOTE', 'FACE_NOTE']

PERCENT_NOTE = (
    'reference_preservation_percent = 100 * max(CLIP-I cosine, 0); '
    'prompt_following_percent = 100 * min(1, 2.5 * max(CLIP-T cosine, 0)) '
    '(CLIPScore, Hessel et al. 2021); combined_percent = their mean; grade '
    'from combined: A+ >= 90, A >= 80, B >= 70, C >= 60, else F; diversity = '
    'mean pairwise 1 - cosine between CLIP embeddings of one case and scale '
    'across seeds.'
)

FACE_NOTE = (
    'face_similarity = mean cosine of the face embeddings (face_embedder) of '
    'the largest face of the reference and of each generated image, over the '
    'images whose reference has a face; a generated image with no face is a '
    'miss: cosine 0, counted in face_misses (of face_scored images).'
)


def _diversity(rows: list[dict]) -> float | None:
    """Mean, over (case, scale) groups with several seeds, of each group's
    pairwise distance; across cases it would measure the cases, not seeds."""
    groups: dict[tuple, list] = defaultdict(list)
    for row in rows:
        groups[row['case_id'], row['scale']].append(row['embedding'])
    values = [
        scores.mean_pairwise_distance(torch.stack(group))
        for group in groups.values()
        if len(group) > 1
    ]
    return mean(values) if values else None


def _face_scores(rows: list[dict]) -> dict[str, Any]:
    """Mean face similarity over the images whose reference has a face
    (a miss counts 0), the misses, the images scored; {} without faces."""
    if not rows or 'face_similarity' not in rows[0]:
        return {}
    scored = [r for r in rows if r['face_similarity'] is not None]
    return dict(
        face_similarity=mean(r['face_similarity'] for r in scored) if scored else None,
        face_misses=sum(not r['face_found'] for r in scored),
        face_scored=len(scored),
    )


def _scores(rows: list[dict]) -> dict[str, Any]:
    clip_i = mean(r['clip_i'] for r in rows)
    clip_t = mean(r['clip_t'] for r in rows)
    combined = scores.combined_percent(clip_i, clip_t)
    return dict(
        clip_i=clip_i,
        clip_t=clip_t,
        reference_preservation_percent=scores.reference_preservation_percent(clip_i),
        prompt_following_percent=scores.prompt_following_percent(clip_t),
        combined_percent=combined,
        grade=scores.grade(combined),
        diversity=_diversity(rows),
        **_face_scores(rows),
        images=[r['image_path'] for r in rows if r.get('image_path')],
    )


def summarize(rows: list[dict], meta: dict | None = None) -> dict[str, Any]:
    """The report: per case and scale, per scale, and overall."""
    by_case: dict[str, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    by_scale: dict[float, list] = defaultdict(list)
    cases = {}
    for row in rows:
        by_case[row['case_id']][row['scale']].append(row)
        by_scale[row['scale']].append(row)
        cases.setdefault(
            row['case_id'],
            dict(id=row['case_id'], reference=row['img_path'], prompt=row['prompt']),
        )
    report_cases = []
    for case_id, per_scale in by_case.items():
        report_cases.append(
            dict(
                cases[case_id],
                scales={
                    f'{scale:g}': _scores(items)
                    for scale, items in sorted(per_scale.items())
                },
            )
        )
    overall = _scores(rows)
    overall.pop('images')
    faces = (
        dict(how_face_similarity_is_derived=FACE_NOTE)
        if 'face_similarity' in overall
        else {}
    )
    return dict(
        meta or {},
        how_percentages_are_derived=PERCENT_NOTE,
        **faces,
        cases=report_cases,
        per_scale={
            f'{scale:g}': {k: v for k, v in _scores(items).items() if k != 'images'}
            for scale, items in sorted(by_scale.items())
        },
        overall=overall,
    )


def _grid(
    rows: list[dict], seed: int, cell: int = 256, header: int = 28
) -> Image.Image:
    """Rows = references, columns = reference | one image per scale."""
    scales = sorted({r['scale'] for r in rows})
    case_ids = list(dict.fromkeys(r['case_id'] for r in rows))
    grid = Image.new(
        'RGB', (cell * (1 + len(scales)), header + cell * len(case_ids)), 'white'
    )
    draw = ImageDraw.Draw(grid)
    titles = ['reference'] + [f'scale {scale:g}' for scale in scales]
    for x, title in enumerate(titles):
        draw.text((x * cell + 8, 8), title, fill='black')
    for y, case_id in enumerate(case_ids):
        top = header + y * cell
        case_rows = [r for r in rows if r['case_id'] == case_id]
        reference = read_rgb_image(case_rows[0]['img_path'])
        grid.paste(reference.resize((cell, cell)), (0, top))
        for x, scale in enumerate(scales, start=1):
            match = [r for r in case_rows if r['scale'] == scale and r['seed'] == seed]
            if match:
                image = Image.open(match[0]['image_path']).convert('RGB')
                grid.paste(image.resize((cell, cell)), (x * cell, top))
    return grid


def save_row_images(rows: list[dict], images: list[Image.Image], out_dir: str) -> None:
    """Each row's image as ``images/<case>_scale<scale>_seed<seed>.png`` under
    ``out_dir``, its path in the row's ``image_path``."""
    image_dir = osp.join(out_dir, 'images')
    os.makedirs(image_dir, exist_ok=True)
    for row, image in zip(rows, images, strict=True):
        row['image_path'] = osp.join(
            image_dir, f'{row["case_id"]}_scale{row["scale"]:g}_seed{row["seed"]}.png'
        )
        image.save(row['image_path'])


def write_report(
    rows: list[dict], images: list[Image.Image], out_dir: str, meta: dict | None = None
) -> dict[str, Any]:
    """Save the images, one grid per seed, the scale trade-off plot (with
    several scales) and ``eval_report.json``."""
    save_row_images(rows, images, out_dir)
    grids = []
    for seed in sorted({r['seed'] for r in rows}):
        grids.append(osp.join(out_dir, f'grid_seed{seed}.png'))
        _grid(rows, seed).save(grids[-1])
    report = summarize(rows, dict(meta or {}, grids=grids))
    if len(report['per_scale']) > 1:  # a full evaluation: the trade-off plot
        report['tradeoff_plot'] = plot_tradeoff(
            {'adapter': report}, osp.join(out_dir, 'tradeoff.png')
        )
    atomic_write_bytes(
        osp.join(out_dir, 'eval_report.json'), json.dumps(report, indent=2).encode()
    )
    return report


# The score columns of the console tables (this one and format_comparison's).
SCORE_COLUMNS = (
    f'{"CLIP-I":>8}{"CLIP-T":>8}{"ref %":>7}{"prompt %":>9}{"comb %":>8}{"grade":>6}'
)
FACE_COLUMNS = f'{"face":>7}{"misses":>7}'


def score_cells(s: dict[str, Any]) -> str:
    """One entry's CLIP-I, CLIP-T, percentages and grade, under SCORE_COLUMNS."""
    return (
        f'{s["clip_i"]:>8.3f}{s["clip_t"]:>8.3f}'
        f'{s["reference_preservation_percent"]:>7.1f}'
        f'{s["prompt_following_percent"]:>9.1f}'
        f'{s["combined_percent"]:>8.1f}{s["grade"]:>6}'
    )


def face_cells(s: dict[str, Any], no_misses: Any) -> str:
    """One entry's face similarity and misses (``no_misses`` where it has
    no count), under FACE_COLUMNS."""
    face = s.get('face_similarity')
    similarity = '-' if face is None else f'{face:.3f}'
    return f'{similarity:>7}{s.get("face_misses", no_misses):>7}'


def format_table(report: dict[str, Any]) -> str:
    """A console table: one line per case and scale, then the overall line
    (with face similarity and misses when the report has them)."""
    faces = 'face_similarity' in report['overall']
    lines = [
        f'{"case":<14}{"scale":>6}{SCORE_COLUMNS}{"divers.":>8}'
        + (FACE_COLUMNS if faces else '')
    ]

    def line(name: str, scale: str, s: dict) -> str:
        diversity = '-' if s['diversity'] is None else f'{s["diversity"]:.3f}'
        text = f'{name:<14}{scale:>6}{score_cells(s)}{diversity:>8}'
        return text + (face_cells(s, no_misses=0) if faces else '')

    for case in report['cases']:
        for scale, s in case['scales'].items():
            lines.append(line(case['id'][:14], scale, s))
    lines.append(line('overall', '', report['overall']))
    return '\n'.join(lines)
