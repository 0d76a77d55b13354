"""The shapes world's judge: does the generated image show the reference's
colour and shape? Scored with the world's own classifier, not CLIP."""

import html
import json
import os.path as osp
from collections import defaultdict
from statistics import mean
from typing import Any

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..fileio import atomic_write_bytes
from ..registry import METRICS
from ..shapes_world.world import chance_levels, classify
from .report import _grid, save_row_images

__all__ = ['ReferenceMatchMetric', 'match_table']


@METRICS.register_module()
class ReferenceMatchMetric(BaseMetric):
    """Colour match and shape match of each generated image with its
    reference, per adapter scale, beside the chance levels.

    The reference's colour and shape are read by the same classifier
    (:func:`diffengine_ipa.shapes_world.world.classify`), which reads the
    world's own images correctly; an image in which it finds no shape
    matches nothing.

    Args:
        out_dir: If set, write ``eval_report.json``, ``report.html``, the
            images, a grid (references | one column per scale) and the
            figure ``reference_match.png`` there, and print the table.
        report_meta: Extra fields for the report (config, checkpoint, mode).
        **kwargs: ``collect_device``, ``prefix`` of :class:`BaseMetric`.

    Returns (from ``evaluate``): ``colour_match@<scale>`` and
    ``shape_match@<scale>`` for each scale, as fractions.
    """

    default_prefix = 'match'

    def __init__(
        self, out_dir: str | None = None, report_meta: dict | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.out_dir = out_dir
        self.report_meta = dict(report_meta or {})
        self._images: list = []

    def process(self, data_batch: Any, data_samples: list[dict]) -> None:
        for sample in data_samples:
            truth = classify(sample['reference'])
            seen = classify(sample['image'])
            self.results.append(
                dict(
                    case_id=sample['case_id'],
                    img_path=sample['img_path'],
                    scale=float(sample['scale']),
                    seed=int(sample['seed']),
                    reference_hue=truth.hue,
                    reference_shape=truth.shape,
                    hue=seen.hue,
                    shape=seen.shape,
                    colour_match=seen.hue is not None and seen.hue == truth.hue,
                    shape_match=(seen.shape is not None and seen.shape == truth.shape),
                )
            )
            if self.out_dir:
                self._images.append(sample['image'])

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        report = summarize_matches(results, self.report_meta)
        if self.out_dir and len(self._images) == len(results):
            _write(report, results, self._images, self.out_dir)
            print_log('\n' + match_table(report), logger='current')
            print_log(
                f'evaluation report: {osp.join(self.out_dir, "eval_report.json")}',
                logger='current',
            )
        self._images = []
        metrics = {}
        for scale, values in report['per_scale'].items():
            metrics[f'colour_match@{scale}'] = values['colour_match']
            metrics[f'shape_match@{scale}'] = values['shape_match']
        return metrics


def summarize_matches(rows: list[dict], meta: dict | None = None) -> dict:
    """Match rates per scale, the chance levels and every row."""
    by_scale: dict[float, list] = defaultdict(list)
    for row in rows:
        by_scale[row['scale']].append(row)
    per_scale = {
        f'{scale:g}': dict(
            colour_match=mean(r['colour_match'] for r in items),
            shape_match=mean(r['shape_match'] for r in items),
            images=len(items),
        )
        for scale, items in sorted(by_scale.items())
    }
    return dict(
        meta or {},
        judge='diffengine_ipa.shapes_world.world.classify',
        chance=chance_levels(),
        per_scale=per_scale,
        rows=[{k: v for k, v in r.items()} for r in rows],
    )


def match_table(report: dict) -> str:
    """The console table: one line per scale, then chance."""
    lines = [f'{"scale":>6}{"colour":>9}{"shape":>9}{"images":>8}']
    for scale, values in report['per_scale'].items():
        lines.append(
            f'{scale:>6}{values["colour_match"]:>9.2f}'
            f'{values["shape_match"]:>9.2f}{values["images"]:>8}'
        )
    chance = report['chance']
    lines.append(f'{"chance":>6}{chance["colour"]:>9.2f}{chance["shape"]:>9.2f}')
    return '\n'.join(lines)


def _write(report: dict, rows: list[dict], images: list, out_dir: str) -> None:
    save_row_images(rows, images, out_dir)
    report['rows'] = rows
    report['grids'] = []
    for seed in sorted({r['seed'] for r in rows}):
        report['grids'].append(osp.join(out_dir, f'grid_seed{seed}.png'))
        _grid(rows, seed, cell=64, header=20).save(report['grids'][-1])
    report['figure'] = _figure(report, osp.join(out_dir, 'reference_match.png'))
    report['html'] = osp.join(out_dir, 'report.html')
    atomic_write_bytes(report['html'], _html(report, out_dir).encode())
    atomic_write_bytes(
        osp.join(out_dir, 'eval_report.json'), json.dumps(report, indent=2).encode()
    )


def _figure(report: dict, path: str) -> str:
    """Match rate against adapter scale, chance levels dashed."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    scales = [float(s) for s in report['per_scale']]
    figure, axes = plt.subplots(figsize=(4.5, 3.2), dpi=100)
    for key, name, colour in (
        ('colour_match', 'colour', 'tab:red'),
        ('shape_match', 'shape', 'tab:blue'),
    ):
        axes.plot(
            scales,
            [v[key] for v in report['per_scale'].values()],
            'o-',
            color=colour,
            label=f'{name} match',
        )
        axes.axhline(
            report['chance'][name],
            color=colour,
            linestyle='--',
            linewidth=1,
            label=f'{name} chance',
        )
    axes.set(
        xlabel='adapter scale',
        ylabel='match rate',
        ylim=(0, 1.02),
        title='reference match (shapes world judge)',
    )
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _html(report: dict, out_dir: str) -> str:
    def rel(path: str) -> str:
        return html.escape(osp.relpath(path, out_dir))

    rows = ''.join(
        f'<tr><td>{s}</td><td>{v["colour_match"]:.2f}</td>'
        f'<td>{v["shape_match"]:.2f}</td><td>{v["images"]}</td></tr>'
        for s, v in report['per_scale'].items()
    )
    chance = report['chance']
    checkpoint = html.escape(str(report.get('checkpoint', '')))
    return (
        '<!doctype html><meta charset="utf-8"><title>reference match</title>'
        f'<h1>Reference match</h1><p>{checkpoint}</p>'
        '<table border="1"><tr><th>scale</th><th>colour</th><th>shape</th>'
        f'<th>images</th></tr>{rows}<tr><td>chance</td>'
        f'<td>{chance["colour"]:.2f}</td><td>{chance["shape"]:.2f}</td><td></td>'
        f'</tr></table><p><img src="{rel(report["figure"])}"></p>'
        + ''.join(f'<p><img src="{rel(g)}"></p>' for g in report['grids'])
    )
