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

__all__ = ['training_records', 'read_scalars', 'sample_images', 'runs']


def _is_resume(folder: str) -> bool:
    """Whether the ``<timestamp>/`` folder's log is of a resumed start."""
    for log in glob.glob(osp.join(folder, '*.log')):
        with open(log, encoding='utf-8', errors='replace') as f:
            if any('resumed epoch' in line or 'resumed iter' in line
                   for line in f):
                return True
    return False


def runs(work_dir: str) -> dict[str, list[str]]:
    """``{name: [timestamp folder, ...]}``: each run of the work dir (a
    fresh start, then its resumes), named by its first folder, oldest
    first."""
    found: dict[str, list[str]] = {}
    folders = sorted(osp.dirname(osp.dirname(path)) for path in glob.glob(
        osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for folder in folders:
        if found and _is_resume(folder):
            found[list(found)[-1]].append(folder)
        else:
            found[osp.basename(folder)] = [folder]
    return found


def training_records(work_dir: str, run: str | None = None
                     ) -> dict[int, dict]:
    """``{step: record}`` of the training records (those with a ``loss``)
    of one run (the latest, or ``run``, a name from :func:`runs`), over its
    resumes (later ones win for the same step); empty when nothing is
    logged yet."""
    found = runs(work_dir)
    if run is not None and run not in found:
        raise UserError(f'{work_dir}: no run {run!r}; its runs: '
                        f'{", ".join(found) or "none"}')
    folders = found[run] if run is not None else (
        found[list(found)[-1]] if found else [])
    records: dict[int, dict] = {}
    for path in (osp.join(folder, 'vis_data', 'scalars.json')
                 for folder in folders):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line still being written
                    continue
                if 'loss' in record:
                    records[int(record['step'])] = record
    return dict(sorted(records.items()))


def read_scalars(work_dir: str, run: str | None = None) -> dict[int, dict]:
    """Like :func:`training_records`, but a work dir without logs or without
    a logged loss is a one-line error."""
    if not glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        raise UserError(f'{work_dir}: no */vis_data/scalars.json; is it a '
                        'work dir of tools/train.py?')
    records = training_records(work_dir, run)
    if not records:
        raise UserError(f'{work_dir}: the logs hold no training loss yet')
    return records


def sample_images(work_dir: str) -> dict[int, list[str]]:
    """``{step: [png, ...]}`` of the sample images that
    ``IPAdapterVisualizationHook`` logged (``<name>_<step>.png``), in step
    order, over all runs of the work dir."""
    samples: dict[int, list[str]] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'vis_image', '*.png'))):
        stem = osp.splitext(osp.basename(path))[0]
        name, _, step = stem.rpartition('_')
        if name and step.isdigit():
            samples.setdefault(int(step), []).append(path)
    return dict(sorted(samples.items()))
