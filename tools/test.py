"""Evaluate IP-Adapters: generate for the evaluation cases, score with CLIP.

    python tools/test.py CONFIG CKPT [CKPT ...] [--quick] [--work-dir DIR]
                         [--out-dir DIR] [--cfg-options KEY=VALUE ...]
                         [--launcher ...]

``mim test diffengine_ipa CONFIG --checkpoint CKPT`` runs this same script.
CKPT is a training checkpoint, a work dir (its last checkpoint), a
converted or published ``.safetensors``/``.bin``, or a checkpoint-N folder of
the official tutorial_train*.py scripts. ``--quick``: the 3 quick cases at scale
1.0 with one seed; otherwise every case at each configured scale and seed.
Writes ``eval_report.json``, the images, one grid per seed and (with several
scales) the CLIP-I / CLIP-T trade-off plot, and prints a table. Given two or
more adapters, evaluates each on the same cases (under ``<out-dir>/<name>``)
and adds one comparison: a table, side-by-side grids per scale, one
trade-off plot and ``comparison.json``.
"""

import argparse
import os.path as osp
import time

from diffengine_ipa.cli import ConfigOptions, ToolParser, output_folder, parse_launched
from diffengine_ipa.errors import UserError, run_tool


def parse_args() -> argparse.Namespace:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint',
        nargs='+',
        help='checkpoint, work dir or adapter; several to compare them',
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help='the 3 quick cases, scale 1.0, one seed '
        '(default: every case, scale and seed)',
    )
    parser.add_argument(
        '--work-dir',
        type=output_folder,
        help='where logs go (default: --out-dir when given, '
        'else work_dirs/<config name>)',
    )
    parser.add_argument(
        '--out-dir',
        type=output_folder,
        help='where the report and images go; nothing is '
        'written elsewhere (default: '
        '<work-dir>/eval_<mode>_<time>)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=ConfigOptions,
        help='override config entries (default: none)',
    )
    parser.add_argument(
        '--verbose',
        action='store_true',
        help="also print MMEngine's environment report and "
        'config dump, which go to the log (default: off)',
    )
    return parse_launched(parser)


def build_config(args: argparse.Namespace):
    from diffengine_ipa.user_config import load_user_config

    cfg = load_user_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if cfg.get('test_dataloader') is None:
        raise UserError(
            f'{args.config}: has no test_dataloader / '
            'test_evaluator; add configs/_base_/datasets/eval_set.py '
            'to its _base_'
        )
    name = osp.splitext(osp.basename(args.config))[0]
    cfg.work_dir = (
        args.work_dir
        or args.out_dir
        or cfg.get('work_dir')
        or osp.join('work_dirs', name)
    )
    mode = 'quick' if args.quick else 'full'
    if args.quick:
        dataset = cfg.test_dataloader.dataset
        dataset.update(quick=True, scales=[1.0], seeds=list(dataset.seeds)[:1])
    out_dir = args.out_dir or osp.join(
        cfg.work_dir, f'eval_{mode}_{time.strftime("%Y%m%d_%H%M%S")}'
    )
    cfg.test_evaluator.update(
        out_dir=out_dir, report_meta=dict(config=args.config, mode=mode)
    )
    cfg.load_from = None  # the adapter is loaded below, in any format
    return cfg


def names_of(checkpoints: list[str]) -> list[str]:
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


def main() -> None:
    import json

    args = parse_args()  # before the heavy imports: --help is instant
    from mmengine.runner import Runner

    from diffengine_ipa.console import memoize_config_formatting, quiet_console
    from diffengine_ipa.evaluation import compare_reports, format_comparison
    from diffengine_ipa.models.model_sources import disable_progress_bars
    from diffengine_ipa.official_format import (
        NeedsLayerOrder,
        load_adapter,
        load_adapter_into,
    )

    quiet_console(verbose=args.verbose)
    memoize_config_formatting()
    cfg = build_config(args)
    disable_progress_bars()
    for checkpoint in args.checkpoint:  # check the files before models load
        try:
            load_adapter(checkpoint)
        except NeedsLayerOrder:
            pass  # numbered from the configured UNet below
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    out_dir = cfg.test_evaluator.out_dir
    several = len(args.checkpoint) > 1
    (metric,) = runner.test_loop.evaluator.metrics
    reports = {}
    for name, checkpoint in zip(
        names_of(args.checkpoint), args.checkpoint, strict=True
    ):
        load_adapter_into(model, checkpoint)
        metric.out_dir = osp.join(out_dir, name) if several else out_dir
        metric.report_meta.update(checkpoint=checkpoint)
        runner.test()
        with open(osp.join(metric.out_dir, 'eval_report.json')) as f:
            reports[name] = json.load(f)
    if several:
        comparison = compare_reports(reports, out_dir)
        print(format_comparison(comparison))
        print(f'comparison: {osp.join(out_dir, "comparison.json")}')


if __name__ == '__main__':
    run_tool(main)
