"""Evaluate IP-Adapters on the evaluation cases: what ``tools/test.py`` and
``mim test`` call.

:func:`evaluate` builds the config's test run once, then for each adapter
loads it (any format), generates for the cases and scores them with CLIP
(``eval_report.json``, images, grids); given several adapters, each goes
under ``<out_dir>/<name>`` and one comparison of them is written.
"""

import json
import os.path as osp
import time
from dataclasses import dataclass

from ..errors import UserError

__all__ = ['Evaluation', 'evaluate', 'build_eval_config', 'adapter_names']


@dataclass
class Evaluation:
    """What :func:`evaluate` wrote: the folder, each adapter's report (by
    name) and, for several adapters, their comparison."""

    out_dir: str
    reports: dict[str, dict]
    comparison: dict | None = None


def evaluate(
    config: str,
    checkpoints: list[str],
    quick: bool = False,
    work_dir: str | None = None,
    out_dir: str | None = None,
    cfg_options: dict | None = None,
    launcher: str = 'none',
) -> Evaluation:
    """Evaluate each of ``checkpoints`` on ``config``'s evaluation cases.

    Args:
        config: The config file (with a ``test_dataloader``).
        checkpoints: Training checkpoints, work dirs, converted or published
            files, or official checkpoint-N folders; several to compare them.
        quick: The 3 quick cases at scale 1.0 with one seed (default: every
            case at each configured scale and seed).
        work_dir: Where logs go (default: ``out_dir``, else the config's,
            else ``work_dirs/<config name>``).
        out_dir: Where reports and images go (default:
            ``<work_dir>/eval_<mode>_<time>``).
        cfg_options: Config overrides (``KEY=VALUE`` parsed).
        launcher: ``none``, ``pytorch``, ``slurm`` or ``mpi``.

    Raises:
        UserError: one line for a config or adapter that cannot run.
    """
    from mmengine.runner import Runner

    from ..evaluation import compare_reports
    from ..models.model_sources import disable_progress_bars
    from ..official_format import NeedsLayerOrder, load_adapter, load_adapter_into

    cfg = build_eval_config(config, quick, work_dir, out_dir, cfg_options, launcher)
    disable_progress_bars()
    for checkpoint in checkpoints:  # check the files before models load
        try:
            load_adapter(checkpoint)
        except NeedsLayerOrder:
            pass  # numbered from the configured UNet below
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    out_dir = cfg.test_evaluator.out_dir
    several = len(checkpoints) > 1
    (metric,) = runner.test_loop.evaluator.metrics
    reports = {}
    for name, checkpoint in zip(adapter_names(checkpoints), checkpoints, strict=True):
        load_adapter_into(model, checkpoint)
        metric.out_dir = osp.join(out_dir, name) if several else out_dir
        metric.report_meta.update(checkpoint=checkpoint)
        runner.test()
        with open(osp.join(metric.out_dir, 'eval_report.json')) as f:
            reports[name] = json.load(f)
    comparison = compare_reports(reports, out_dir) if several else None
    return Evaluation(out_dir, reports, comparison)


def build_eval_config(
    config: str,
    quick: bool = False,
    work_dir: str | None = None,
    out_dir: str | None = None,
    cfg_options: dict | None = None,
    launcher: str = 'none',
):
    """The config's test run with the options applied (see :func:`evaluate`
    for the arguments); the adapter is loaded afterwards, in any format."""
    from ..user_config import load_user_config

    cfg = load_user_config(config, cfg_options)
    cfg.launcher = launcher
    if cfg.get('test_dataloader') is None:
        raise UserError(
            f'{config}: has no test_dataloader / '
            'test_evaluator; add configs/_base_/datasets/eval_set.py '
            'to its _base_'
        )
    name = osp.splitext(osp.basename(config))[0]
    cfg.work_dir = (
        work_dir or out_dir or cfg.get('work_dir') or osp.join('work_dirs', name)
    )
    mode = 'quick' if quick else 'full'
    if quick:
        dataset = cfg.test_dataloader.dataset
        dataset.update(quick=True, scales=[1.0], seeds=list(dataset.seeds)[:1])
    out_dir = out_dir or osp.join(
        cfg.work_dir, f'eval_{mode}_{time.strftime("%Y%m%d_%H%M%S")}'
    )
    cfg.test_evaluator.update(
        out_dir=out_dir, report_meta=dict(config=config, mode=mode)
    )
    cfg.load_from = None  # the adapter is loaded by evaluate, in any format
    return cfg


def adapter_names(checkpoints: list[str]) -> list[str]:
    """Short, distinct names of the adapters (their file or folder names)."""
    names: list[str] = []
    for path in checkpoints:
        path = osp.normpath(path)
        stem = osp.splitext(osp.basename(path))[0] or 'adapter'
        parent = osp.basename(osp.dirname(osp.abspath(path)))
        name = stem if stem not in names else f'{parent}_{stem}'
        while name in names:
            name += '_'
        names.append(name)
    return names
