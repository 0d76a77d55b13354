"""What the page shows, from the callbacks' plain results: no Gradio here,
so these are tested without a browser."""

import html
import os.path as osp

from .train_process import TrainStatus
from .workspace import Workspace

__all__ = [
    'dataset_summary',
    'dataset_gallery',
    'progress_html',
    'status_markdown',
    'loss_table',
    'gain_table',
    'sample_gallery',
]


def dataset_summary(ws: Workspace, folder: str, rows: list[list]) -> str:
    """One line: how many images, how many usable, where the file is."""
    usable = sum(1 for row in rows if row[2] == 'ok')
    where = osp.join(ws.relative(folder), 'data.json')
    images = f'{len(rows)} image' + ('' if len(rows) == 1 else 's')
    return f'{images}, **{usable} usable** · annotation file `{where}`' + (
        '' if usable == len(rows) else ' · fix or remove the rows whose check is not ok'
    )


def dataset_gallery(
    ws: Workspace, folder: str, rows: list[list]
) -> list[tuple[str, str]]:
    """``(image, caption)`` of the rows whose image exists in the folder."""
    root = ws.resolve(folder)
    items = []
    for row in rows:
        path = osp.normpath(osp.join(root, str(row[0])))
        if path.startswith(root + osp.sep) and osp.isfile(path):
            items.append((path, str(row[1])))
    return items


def progress_html(status: TrainStatus) -> str:
    """A progress bar with iterations, percentage and ETA."""
    done, total = status.done, status.total
    if total:
        text = f'iteration {done} / {total} ({100 * done / total:.0f} %)'
    elif done:
        text = f'iteration {done}'
    else:
        text = (
            'waiting for the first iteration'
            if status.state == 'running'
            else 'no iterations yet'
        )
    if status.eta and status.state == 'running':
        text += f' · ETA {status.eta}'
    return (
        f'<div class="train-progress"><progress value="{done}" '
        f'max="{total or max(done, 1)}"></progress> '
        f'<span class="progress-text">{html.escape(text)}</span></div>'
    )


def status_markdown(run: str, status: TrainStatus) -> str:
    """The run's state in one line."""
    line = f'**runs/{run}: {status.state}**'
    if status.sample_step is not None:
        line += f' · samples of step {status.sample_step}'
    if status.gains:
        step, gain, none = status.gains[-1]
        line += (
            f' · reference gain {gain:+.4f} (no reference {none:+.4f}) '
            f'at iteration {step}'
        )
    if status.reference_warning:
        line += f'\n\n⚠ {html.escape(status.reference_warning)}'
    return line


def loss_table(status: TrainStatus):
    """The loss curve as a DataFrame (``iteration``, ``loss``), numeric even
    when empty (the plot reads its axes' types from the columns)."""
    import pandas as pd

    return pd.DataFrame(
        {
            'iteration': pd.Series([s for s, _ in status.losses], dtype='int64'),
            'loss': pd.Series([v for _, v in status.losses], dtype='float64'),
        }
    )


def gain_table(status: TrainStatus):
    """The reference gains per validation as a long DataFrame
    (``iteration``, ``gain``, ``kind``: shuffled / none)."""
    import pandas as pd

    rows = [
        (step, value, kind)
        for step, gain, none in status.gains
        for value, kind in ((gain, 'shuffled'), (none, 'none'))
    ]
    return pd.DataFrame(
        {
            'iteration': pd.Series([r[0] for r in rows], dtype='int64'),
            'gain': pd.Series([r[1] for r in rows], dtype='float64'),
            'kind': pd.Series([r[2] for r in rows], dtype='str'),
        }
    )


def sample_gallery(status: TrainStatus) -> list[tuple[str, str]]:
    """The latest samples (reference | generated) with their names."""
    return [(path, osp.splitext(osp.basename(path))[0]) for path in status.samples]
