"""tools/check_dataset.py: the dataset check alone, as a command."""
import json
import os.path as osp

from ..conftest import REPO
from ..datasets.bad_inputs import write_case
from .helpers import one_line_error, run_tool


def test_clean_dataset_exits_0():
    result = run_tool('check_dataset.py',
                      osp.join(REPO, 'data/mini_dataset/data.json'))
    assert 'all 5 records usable' in result.stdout


def test_problems_are_listed_and_exit_nonzero(tmp_path):
    records = write_case(tmp_path, 'truncated JPEG')
    records += [{'image_file': 'images/missing.jpg', 'text': None}]
    records += [{'image_file': 'images/missing.jpg', 'text': 'x'}]
    (tmp_path / 'data.jsonl').write_text(
        '\n'.join(json.dumps(r) for r in records))
    result = run_tool('check_dataset.py', tmp_path / 'data.jsonl', check=False)
    assert '3 of 4 records are unusable' in one_line_error(result)
    lines = result.stderr.splitlines()[-3:]
    assert lines[0].startswith('  record 1 (images/cut.jpg): truncated')
    assert lines[1] == '  record 2 (images/missing.jpg): caption ("text") is null'
    assert lines[2] == '  record 3 (images/missing.jpg): no such file'
