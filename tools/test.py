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

from diffengine_ipa.cli import ConfigOptions, ToolParser, output_folder, parse_launched
from diffengine_ipa.errors import run_tool


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


def main() -> None:
    args = parse_args()  # before the heavy imports: --help is instant
    from diffengine_ipa.console import memoize_config_formatting, quiet_console

    quiet_console(verbose=args.verbose)
    memoize_config_formatting()
    from diffengine_ipa.apis import evaluate
    from diffengine_ipa.evaluation import format_comparison

    evaluation = evaluate(
        args.config,
        args.checkpoint,
        quick=args.quick,
        work_dir=args.work_dir,
        out_dir=args.out_dir,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
    )
    if evaluation.comparison is not None:
        print(format_comparison(evaluation.comparison))
        print(f'comparison: {osp.join(evaluation.out_dir, "comparison.json")}')


if __name__ == '__main__':
    run_tool(main)
