"""A work dir's runs: a fresh start and its resumes are one run; a second
fresh start is another, never mixed with the first."""
import json

import pytest

from diffengine_ipa.errors import UserError
from diffengine_ipa.run_logs import runs, training_records


def write_run(work_dir, stamp: str, steps: range, loss: float,
              resumed: bool = False) -> None:
    folder = work_dir / stamp
    (folder / 'vis_data').mkdir(parents=True)
    (folder / f'{stamp}.log').write_text(
        'resumed epoch: 1, iter: 10\n' if resumed else 'started\n')
    (folder / 'vis_data' / 'scalars.json').write_text(''.join(
        json.dumps(dict(step=s, loss=loss, lr=1e-4)) + '\n' for s in steps))


def test_runs_follow_resumes_and_never_mix(tmp_path):
    write_run(tmp_path, '20260101_000000', range(5, 25, 5), 1.0)
    write_run(tmp_path, '20260101_010000', range(15, 35, 5), 2.0, resumed=True)
    write_run(tmp_path, '20260102_000000', range(5, 15, 5), 3.0)  # fresh again
    assert list(runs(str(tmp_path))) == ['20260101_000000', '20260102_000000']
    latest = training_records(str(tmp_path))
    assert list(latest) == [5, 10] and {r['loss'] for r in latest.values()} == {3.0}
    first = training_records(str(tmp_path), '20260101_000000')
    assert list(first) == [5, 10, 15, 20, 25, 30]
    assert [first[s]['loss'] for s in first] == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    with pytest.raises(UserError, match='its runs: 20260101_000000, '):
        training_records(str(tmp_path), 'nope')
    assert training_records(str(tmp_path / 'empty')) == {}
