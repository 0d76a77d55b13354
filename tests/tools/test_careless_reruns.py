"""A fresh run into a work dir that holds a run's checkpoints is refused:
nothing of the earlier run is overwritten or repointed."""

import os

from ..conftest import TINY_CONFIG, tiny_overrides
from ..official_format.bad_adapters import (
    good_state,
    kit_checkpoint,
    write_kit_checkpoint,
)
from .helpers import one_line_error, run_tool_in_process


def finished_run(work_dir) -> dict[str, tuple[bytes, int]]:
    """A work dir as a finished run leaves it; each file's bytes and mtime."""
    work_dir.mkdir()
    write_kit_checkpoint(work_dir / 'iter_4.pth', *kit_checkpoint(good_state('base')))
    (work_dir / 'last_checkpoint').write_text('iter_4.pth')
    return snapshot(work_dir)


def snapshot(folder) -> dict[str, tuple[bytes, int]]:
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in folder.iterdir()
        if p.is_file()
    }


def test_fresh_run_over_checkpoints_is_refused(tiny_family, tmp_path):
    work_dir = tmp_path / 'run'
    before = finished_run(work_dir)
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    error = one_line_error(
        run_tool_in_process(
            'train.py', TINY_CONFIG, '--work-dir', work_dir, '--cfg-options', *options
        )
    )
    assert f'{work_dir}: holds the checkpoints of an earlier run' in error
    assert 'iter_4.pth' in error
    assert '--resume' in error and 'another --work-dir' in error
    assert snapshot(work_dir) == before


def test_fresh_run_into_a_work_dir_without_checkpoints_starts(tmp_path):
    from diffengine_ipa.work_dir import refuse_fresh_run_over

    work_dir = tmp_path / 'logs_only'
    (work_dir / '20261202_120000').mkdir(parents=True)  # a run that failed
    refuse_fresh_run_over(str(work_dir))  # no error
    refuse_fresh_run_over(str(tmp_path / 'new'))
    assert not os.path.exists(tmp_path / 'new')
