"""evaluate: tools/test.py's evaluation, in this process; what it returns is
what it wrote."""

import json
import os.path as osp

from diffengine_ipa.apis import evaluate
from diffengine_ipa.apis.adapter_evaluation import adapter_names

from ..conftest import TINY_CONFIG, tiny_overrides


def test_quick_evaluation_returns_its_report(tiny_family, converted, tmp_path):
    out_dir = str(tmp_path / 'quick')
    evaluation = evaluate(
        TINY_CONFIG,
        [converted['safetensors']],
        quick=True,
        work_dir=str(tmp_path),
        out_dir=out_dir,
        cfg_options=tiny_overrides(tiny_family),
    )
    assert evaluation.out_dir == out_dir and evaluation.comparison is None
    (report,) = evaluation.reports.values()
    with open(osp.join(out_dir, 'eval_report.json')) as f:
        assert report == json.load(f)
    assert [case['id'] for case in report['cases']] == ['cat', 'mountains', 'rocket']
    assert report['mode'] == 'quick'
    assert report['checkpoint'] == converted['safetensors']


def test_adapter_names_are_short_and_distinct():
    assert adapter_names(
        ['a/ip_adapter.safetensors', 'b/ip_adapter.bin', 'b/ip_adapter.pt', 'run/']
    ) == ['ip_adapter', 'b_ip_adapter', 'b_ip_adapter_', 'run']
