"""The Evaluate tab: ``tools/test.py CONFIG CKPT [--quick]`` in a subprocess;
the report's table, its grids and (full mode) the scale trade-off plot.
"""

import json
import os.path as osp
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import UserError
from . import kit
from .base_models import model_options, options_to_args
from .files import run_of
from .train_process import log_tail
from .workspace import Workspace

__all__ = [
    'EvalUpdate',
    'evaluation_command',
    'run_evaluation',
    'report_rows',
    'REPORT_HEADERS',
]

REPORT_HEADERS = [
    'case',
    'scale',
    'CLIP-I',
    'CLIP-T',
    'reference %',
    'prompt %',
    'combined %',
    'grade',
]


@dataclass
class EvalUpdate:
    """The evaluation so far: its log tail, and at the end its report."""

    log: str = ''
    done: bool = False
    report: dict | None = None
    rows: list[list] = field(default_factory=list)
    grids: list[str] = field(default_factory=list)
    tradeoff: str | None = None
    out_dir: str | None = None


def evaluation_command(
    ws: Workspace,
    config: str,
    adapter: str,
    quick: bool,
    out_dir: str,
    base_model: str = '',
    image_encoder: str = '',
) -> list[str]:
    """``python tools/test.py CONFIG CKPT [--quick] --work-dir OUT --out-dir
    OUT --cfg-options ...``."""
    if kit.eval_data_root() is None:
        raise UserError(
            "the kit's evaluation set (data/eval_set) is not here; "
            'run the page from a checkout of the kit'
        )
    args = [kit.config_path(config), ws.resolve(adapter, must_exist=True)]
    if quick:
        args.append('--quick')
    args += ['--work-dir', out_dir, '--out-dir', out_dir]
    args += options_to_args(model_options(ws, config, base_model, image_encoder))
    return kit.tool_command('test', *args)


def _row(name: str, scale: str, s: dict) -> list:
    return [
        name,
        scale,
        round(s['clip_i'], 3),
        round(s['clip_t'], 3),
        round(s['reference_preservation_percent'], 1),
        round(s['prompt_following_percent'], 1),
        round(s['combined_percent'], 1),
        s['grade'],
    ]


def report_rows(report: dict) -> list[list]:
    """The report as table rows: each case and scale, then overall."""
    rows = [
        _row(case['id'], scale, s)
        for case in report['cases']
        for scale, s in case['scales'].items()
    ]
    rows.append(_row('overall', '', report['overall']))
    return rows


def _out_dir(ws: Workspace, adapter: str, quick: bool) -> str:
    run = run_of(ws, adapter)
    stem = osp.splitext(osp.basename(ws.resolve(adapter)))[0]
    name = f'eval_{"quick" if quick else "full"}_{stem}_' + time.strftime(
        '%Y%m%d_%H%M%S'
    )
    return osp.join(ws.run_dir(run), name) if run else osp.join(ws.folder('eval'), name)


def run_evaluation(
    ws: Workspace,
    config: str,
    adapter: str,
    quick: bool = True,
    base_model: str = '',
    image_encoder: str = '',
    poll: float = 1.0,
) -> Iterator[EvalUpdate]:
    """Run the evaluation; yield its log as it goes, then the report."""
    if not adapter:
        raise UserError('choose a checkpoint or adapter file to evaluate')
    out_dir = _out_dir(ws, adapter, quick)
    command = evaluation_command(
        ws, config, adapter, quick, out_dir, base_model, image_encoder
    )
    log_path = out_dir + '.log'
    with open(log_path, 'wb') as log:
        proc = kit.start_tool(command, ws.root, log)
    try:
        while proc.poll() is None:
            yield EvalUpdate(log=_tail(log_path))
            time.sleep(poll)
    finally:
        if proc.poll() is None:  # the page went away: stop it
            proc.terminate()
            proc.wait()
    report_file = osp.join(out_dir, 'eval_report.json')
    if proc.returncode != 0 or not osp.isfile(report_file):
        yield EvalUpdate(log=_tail(log_path), done=True, out_dir=out_dir)
        return
    with open(report_file) as f:
        report = json.load(f)
    yield EvalUpdate(
        log=_tail(log_path),
        done=True,
        report=report,
        rows=report_rows(report),
        grids=list(report['grids']),
        tradeoff=report.get('tradeoff_plot'),
        out_dir=out_dir,
    )


def _tail(path: str) -> str:
    with open(path, encoding='utf-8', errors='replace') as f:
        return log_tail(f.read())
