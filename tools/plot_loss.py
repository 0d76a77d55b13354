"""Plot the loss (and learning rate) curve of a training run.

    python tools/plot_loss.py WORK_DIR [--run NAME] [--out PNG] [--smooth 10]

Plots one run of the work dir: the latest, or ``--run`` (the name of its
first ``<timestamp>/`` folder), with its resumes (each writes its own
``<timestamp>/vis_data/scalars.json``; later ones win for the same step).
A second fresh training into the same work dir is another run. Beside the
loss: the reference gain of each validation (``ReferenceGainHook``; above
0 = the adapter uses its reference) and the learning rate. Writes
``<WORK_DIR>/loss_curve.png``.
"""

import os.path as osp

from diffengine_ipa.cli import ToolParser, int_at_least, output_file
from diffengine_ipa.errors import run_tool
from diffengine_ipa.run_logs import read_scalars, reference_gains, runs


def moving_average(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def main() -> None:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='a work dir of tools/train.py')
    parser.add_argument(
        '--run',
        help='which run: the name of its first '
        '<timestamp> folder (default: the latest)',
    )
    parser.add_argument(
        '--out',
        type=output_file('.png', '.svg', '.pdf'),
        help='PNG path (default: WORK_DIR/loss_curve.png)',
    )
    parser.add_argument(
        '--smooth',
        type=int_at_least(1),
        default=10,
        help='moving-average window, in logged steps (default: 10)',
    )
    args = parser.parse_args()
    records = read_scalars(args.work_dir, args.run)
    names = list(runs(args.work_dir))
    run = args.run or names[-1]

    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    steps = list(records)
    loss = [records[s]['loss'] for s in steps]
    gains = reference_gains(args.work_dir, args.run)
    fig, axes = plt.subplots(
        3 if gains else 2,
        1,
        figsize=(8, 8 if gains else 6),
        sharex=True,
        height_ratios=(3, 2, 1) if gains else (3, 1),
    )
    ax_loss, ax_lr = axes[0], axes[-1]
    ax_loss.plot(steps, loss, alpha=0.35, label='loss')
    ax_loss.plot(
        steps,
        moving_average(loss, args.smooth),
        label=f'moving average ({args.smooth})',
    )
    ax_loss.set_ylabel('noise-prediction MSE')
    ax_loss.legend()
    ax_loss.set_title(f'{osp.basename(osp.normpath(args.work_dir))} (run {run})')
    if gains:
        ax_gain = axes[1]
        at = list(gains)
        for key, label in (
            ('reference_gain', 'reference gain (shuffled)'),
            ('no_reference_gain', 'no-reference gain'),
        ):
            ax_gain.plot(at, [gains[s].get(key) for s in at], marker='o', label=label)
        ax_gain.axhline(0, color='grey', linewidth=0.8)
        ax_gain.set_ylabel('held-out loss gain')
        ax_gain.legend()
    if all('lr' in records[s] for s in steps):
        ax_lr.plot(steps, [records[s]['lr'] for s in steps])
    ax_lr.set_ylabel('learning rate')
    ax_lr.set_xlabel('iteration')
    fig.tight_layout()
    out = args.out or osp.join(args.work_dir, 'loss_curve.png')
    fig.savefig(out, dpi=100)
    others = (
        f'; other runs: {", ".join(n for n in names if n != run)}'
        if len(names) > 1
        else ''
    )
    last = (
        f'; reference gain {list(gains.values())[-1]["reference_gain"]:+.4f}'
        ' at the last validation'
        if gains
        else ''
    )
    print(f'wrote {out} ({len(steps)} logged steps of run {run}{others}{last})')


if __name__ == '__main__':
    run_tool(main)
