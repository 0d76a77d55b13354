"""The reference-preservation / prompt-following trade-off across scales."""

from typing import Any

__all__ = ['plot_tradeoff']


def plot_tradeoff(reports: dict[str, dict[str, Any]], path: str) -> str:
    """Plot CLIP-T (x) against CLIP-I (y) per scale, one line per report
    (name → ``eval_report.json`` contents), each point labelled with its
    scale; raising the scale moves up (reference) and left (prompt)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.5))
    for name, report in reports.items():
        scales = sorted(report['per_scale'], key=float)
        x = [report['per_scale'][s]['clip_t'] for s in scales]
        y = [report['per_scale'][s]['clip_i'] for s in scales]
        axes.plot(x, y, marker='o', label=name)
        for scale, xi, yi in zip(scales, x, y, strict=True):
            axes.annotate(
                f'scale {scale}',
                (xi, yi),
                textcoords='offset points',
                xytext=(4, 4),
                fontsize=8,
            )
    axes.set_xlabel('prompt following (CLIP-T cosine)')
    axes.set_ylabel('reference preservation (CLIP-I cosine)')
    axes.set_title('IP-Adapter scale: reference vs prompt')
    axes.grid(alpha=0.3)
    if len(reports) > 1:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
