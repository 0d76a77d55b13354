"""tools/check_dataset.py: the dataset check alone, as a command."""

import json
import os
import os.path as osp
from pathlib import Path

from ..conftest import REPO
from ..datasets.bad_inputs import write_case
from .helpers import one_line_error, run_tool


def test_clean_dataset_exits_0():
    result = run_tool('check_dataset.py', osp.join(REPO, 'data/mini_dataset/data.json'))
    assert 'all 5 records usable' in result.stdout


def test_problems_are_listed_and_exit_nonzero(tmp_path):
    records = write_case(tmp_path, 'truncated JPEG')
    records += [{'image_file': 'images/missing.jpg', 'text': None}]
    records += [{'image_file': 'images/missing.jpg', 'text': 'x'}]
    (tmp_path / 'data.jsonl').write_text('\n'.join(json.dumps(r) for r in records))
    result = run_tool('check_dataset.py', tmp_path / 'data.jsonl', check=False)
    assert '3 of 4 records are unusable' in one_line_error(result)
    lines = result.stderr.splitlines()[-3:]
    assert lines[0].startswith('  record 1 (images/cut.jpg): truncated')
    assert lines[1] == '  record 2 (images/missing.jpg): caption ("text") is null'
    assert lines[2] == '  record 3 (images/missing.jpg): no such file'


def test_counts_by_problem_and_verdicts_cached_until_a_file_changes(tmp_path):
    from .helpers import run_tool_in_process

    records = write_case(tmp_path, 'truncated JPEG')
    records += [{'image_file': f'images/gone{i}.jpg', 'text': 'x'} for i in range(3)]
    (tmp_path / 'data.json').write_text(json.dumps(records))
    result = run_tool_in_process(
        'check_dataset.py', tmp_path / 'data.json', '--workers', '2'
    )
    assert '(no such file: 3, truncated or corrupt JPEG: 1)' in one_line_error(result)
    # Nothing changed: no image is read again, the index is not rewritten.
    (meta,) = [
        path
        for path in (Path(os.environ['DIFFENGINE_IPA_CACHE']) / 'dataset_index').glob(
            '*/meta.json'
        )
        if json.loads(path.read_text())['source'] == str(tmp_path / 'data.json')
    ]
    written = meta.stat().st_mtime_ns
    again = run_tool_in_process('check_dataset.py', tmp_path / 'data.json')
    assert '4 of 5 records are unusable' in one_line_error(again)
    assert meta.stat().st_mtime_ns == written
    # A file replaced behind the cache's back, with the same size and mtime
    # (as ``cp -p`` leaves it), is read again: its ctime changed.
    good = tmp_path / 'images/good.jpg'
    stat = good.stat()
    good.write_bytes(b'\0' * stat.st_size)
    os.utime(good, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    third = run_tool_in_process('check_dataset.py', tmp_path / 'data.json')
    assert '5 of 5 records are unusable' in one_line_error(third)
