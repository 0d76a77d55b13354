"""Read what a training run logs: ``<work_dir>/<timestamp>/vis_data/``.

MMEngine's ``LocalVisBackend`` writes one JSON line per logged step to
``scalars.json`` and sample images to ``vis_image/``; each start of
``tools/train.py`` writes a new ``<timestamp>/`` folder. A *run* is a fresh
start and the resumes that follow it (their log says ``resumed epoch``): a
second fresh training into the same work dir is another run, whose steps
start again, and is never mixed with the first. ``tools/plot_loss.py`` and
the web UI read them here.
"""

import glob
import json
import os.path as osp

from .errors import UserError

__all__ = [
    'training_records',
    'read_scalars',
    'sample_images',
    'runs',
    'reference_gains',
    'reference_warning',
    'UNUSED_REFERENCE',
]

# The words of ReferenceGainHook's warning, by which the log line is found.
UNUSED_REFERENCE = 'the adapter is not using its reference'


def _is_resume(folder: str) -> bool:
    """Whether the ``<timestamp>/`` folder's log is of a resumed start."""
    for log in glob.glob(osp.join(folder, '*.log')):
        with open(log, encoding='utf-8', errors='replace') as f:
            if any('resumed epoch' in line or 'resumed iter' in line for line in f):
                return True
    return False


def runs(work_dir: str) -> dict[str, list[str]]:
    """``{name: [timestamp folder, ...]}``: each run of the work dir (a
    fresh start, then its resumes), named by its first folder, oldest
    first."""
    found: dict[str, list[str]] = {}
    folders = sorted(
        osp.dirname(osp.dirname(path))
        for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    )
    for folder in folders:
        if found and _is_resume(folder):
            found[list(found)[-1]].append(folder)
        else:
            found[osp.basename(folder)] = [folder]
    return found


def _run_folders(work_dir: str, run: str | None) -> list[str]:
    """The ``<timestamp>/`` folders of one run (the latest, or ``run``)."""
    found = runs(work_dir)
    if run is not None and run not in found:
        raise UserError(
            f'{work_dir}: no run {run!r}; its runs: {", ".join(found) or "none"}'
        )
    return found[run] if run is not None else (found[list(found)[-1]] if found else [])


def _records(folders: list[str]) -> list[dict]:
    """Every record of the folders' ``scalars.json``, in order."""
    records = []
    for path in (osp.join(folder, 'vis_data', 'scalars.json') for folder in folders):
        with open(path) as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line still being written
                    continue
    return records


def training_records(work_dir: str, run: str | None = None) -> dict[int, dict]:
    """``{step: record}`` of the training records (those with a ``loss``)
    of one run (the latest, or ``run``, a name from :func:`runs`), over its
    resumes (later ones win for the same step); empty when nothing is
    logged yet."""
    records = {
        int(r['step']): r for r in _records(_run_folders(work_dir, run)) if 'loss' in r
    }
    return dict(sorted(records.items()))


def reference_gains(work_dir: str, run: str | None = None) -> dict[int, dict]:
    """``{iteration: {'reference_gain', 'no_reference_gain'}}`` of one run's
    validations (``ReferenceGainHook``). MMEngine logs a validation at its
    epoch in epoch-based training: it is placed at that epoch's last
    logged iteration."""
    records = _records(_run_folders(work_dir, run))
    epoch_end: dict[int, int] = {}
    for r in records:
        if 'loss' in r and 'epoch' in r:
            epoch_end[int(r['epoch'])] = max(
                epoch_end.get(int(r['epoch']), 0), int(r['step'])
            )
    gains = {}
    for r in records:
        if 'reference_gain' in r and 'loss' not in r:
            step = int(r['step'])
            gains[epoch_end.get(step, step) if epoch_end else step] = {
                key: float(r[key])
                for key in ('reference_gain', 'no_reference_gain')
                if key in r
            }
    return dict(sorted(gains.items()))


def reference_warning(work_dir: str, run: str | None = None) -> str | None:
    """The hook's warning that the adapter is not using its reference (the
    log's last such line), while the latest gain is still ≤ 0."""
    folders = _run_folders(work_dir, run)
    gains = reference_gains(work_dir, run)
    if not gains or list(gains.values())[-1].get('reference_gain', 1) > 0:
        return None
    warning = None
    for log in sorted(glob.glob(osp.join(folder, '*.log')) for folder in folders):
        for path in log:
            with open(path, encoding='utf-8', errors='replace') as f:
                for line in f:
                    if UNUSED_REFERENCE in line:
                        warning = line.strip()
    if warning and ' - WARNING - ' in warning:
        warning = warning.split(' - WARNING - ', 1)[1]
    return warning


def read_scalars(work_dir: str, run: str | None = None) -> dict[int, dict]:
    """Like :func:`training_records`, but a work dir without logs or without
    a logged loss is a one-line error."""
    if not glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        raise UserError(
            f'{work_dir}: no */vis_data/scalars.json; is it a '
            'work dir of tools/train.py?'
        )
    records = training_records(work_dir, run)
    if not records:
        raise UserError(f'{work_dir}: the logs hold no training loss yet')
    return records


def sample_images(work_dir: str) -> dict[int, list[str]]:
    """``{step: [png, ...]}`` of the sample images that
    ``IPAdapterVisualizationHook`` logged (``<name>_<step>.png``), in step
    order, over all runs of the work dir."""
    samples: dict[int, list[str]] = {}
    for path in sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'vis_image', '*.png'))
    ):
        stem = osp.splitext(osp.basename(path))[0]
        name, _, step = stem.rpartition('_')
        if name and step.isdigit():
            samples.setdefault(int(step), []).append(path)
    return dict(sorted(samples.items()))
