"""The Evaluate tab: tools/test.py --quick in a subprocess; the report's
table and grids."""

import os.path as osp

import pytest

from diffengine_ipa.webui.evaluation import report_rows, run_evaluation

from .conftest import CONFIG, put


@pytest.mark.slow
def test_quick_evaluation_shows_the_reports_table(tiny_workspace, converted):
    ws = tiny_workspace
    put(ws, converted['safetensors'], 'runs/eval_run/ip_adapter.safetensors')
    updates = list(
        run_evaluation(
            ws, CONFIG, 'runs/eval_run/ip_adapter.safetensors', quick=True, poll=0.5
        )
    )
    assert all(not u.done for u in updates[:-1]) and updates[-1].done
    last = updates[-1]
    assert last.report is not None, last.log
    assert osp.dirname(last.out_dir) == ws.run_dir('eval_run')
    assert [row[:2] for row in last.rows] == [
        ['cat', '1'],
        ['mountains', '1'],
        ['rocket', '1'],
        ['overall', ''],
    ]
    assert last.rows == report_rows(last.report)
    assert all(row[-1] in ('A+', 'A', 'B', 'C', 'F') for row in last.rows)
    assert [osp.basename(g) for g in last.grids] == ['grid_seed0.png']
    assert last.tradeoff is None  # quick: one scale, no trade-off plot
    assert osp.isfile(last.out_dir + '.log')
