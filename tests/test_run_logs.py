"""A work dir's runs: a fresh start and its resumes are one run; a second
fresh start is another, never mixed with the first."""

import json

import pytest

from diffengine_ipa.errors import UserError
from diffengine_ipa.run_logs import (
    UNUSED_REFERENCE,
    reference_gains,
    reference_warning,
    runs,
    training_records,
)


def write_run(
    work_dir, stamp: str, steps: range, loss: float, resumed: bool = False
) -> None:
    folder = work_dir / stamp
    (folder / 'vis_data').mkdir(parents=True)
    (folder / f'{stamp}.log').write_text(
        'resumed epoch: 1, iter: 10\n' if resumed else 'started\n'
    )
    (folder / 'vis_data' / 'scalars.json').write_text(
        ''.join(json.dumps(dict(step=s, loss=loss, lr=1e-4)) + '\n' for s in steps)
    )


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


def test_reference_gains_sit_at_their_epochs_last_iteration(tmp_path):
    """MMEngine logs a validation at its epoch; the plot and the web UI
    put it at that epoch's last iteration; the hook's warning shows while
    the latest gain is still ≤ 0."""
    folder = tmp_path / '20260101_000000'
    (folder / 'vis_data').mkdir(parents=True)
    lines = [dict(step=s, loss=1.0, epoch=(s - 1) // 5 + 1) for s in range(1, 21)]
    lines.insert(10, dict(step=2, reference_gain=-0.01, no_reference_gain=0.0))
    lines.append(dict(step=4, reference_gain=-0.02, no_reference_gain=0.01))
    (folder / 'vis_data' / 'scalars.json').write_text(
        ''.join(json.dumps(line) + '\n' for line in lines)
    )
    warning = (
        'reference gain -0.0200 ≤ 0 for 2 validations in a row: '
        f'{UNUSED_REFERENCE} (see docs)'
    )
    (folder / '20260101_000000.log').write_text(
        f'12/02 20:35:13 - mmengine - WARNING - {warning}\n'
    )
    assert reference_gains(str(tmp_path)) == {
        10: dict(reference_gain=-0.01, no_reference_gain=0.0),
        20: dict(reference_gain=-0.02, no_reference_gain=0.01),
    }
    assert reference_warning(str(tmp_path)) == warning
    with open(folder / 'vis_data' / 'scalars.json', 'a') as f:
        f.write(json.dumps(dict(step=25, loss=1.0, epoch=5)) + '\n')
        f.write(json.dumps(dict(step=5, reference_gain=0.03)) + '\n')
    assert reference_warning(str(tmp_path)) is None  # it uses it now
