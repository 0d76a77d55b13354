"""Read what a training run logs: ``<work_dir>/<timestamp>/vis_data/``.

MMEngine's ``LocalVisBackend`` writes one JSON line per logged step to
``scalars.json`` and sample images to ``vis_image/``; a resumed run starts a
new ``<timestamp>/`` folder. ``tools/plot_loss.py`` and the web UI read them
here.
"""
import glob
import json
import os.path as osp

from .errors import UserError

__all__ = ['training_records', 'read_scalars', 'sample_images']


def training_records(work_dir: str) -> dict[int, dict]:
    """``{step: record}`` of the training records (those with a ``loss``),
    merged over all runs of the work dir (later runs win for the same step);
    empty when nothing is logged yet."""
    records: dict[int, dict] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line still being written
                    continue
                if 'loss' in record:
                    records[int(record['step'])] = record
    return dict(sorted(records.items()))


def read_scalars(work_dir: str) -> dict[int, dict]:
    """Like :func:`training_records`, but a work dir without logs or without
    a logged loss is a one-line error."""
    if not glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        raise UserError(f'{work_dir}: no */vis_data/scalars.json; is it a '
                        'work dir of tools/train.py?')
    records = training_records(work_dir)
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
