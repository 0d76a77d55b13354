"""Evaluation: CLIP scores of generated images, reports and grids."""

from .clip_judge import CLIPJudge, get_judge
from .comparison import compare_reports, format_comparison
from .ip_adapter_metric import IPAdapterMetric
from .reference_match_metric import ReferenceMatchMetric
from .report import format_table, summarize, write_report
from .tradeoff_plot import plot_tradeoff

__all__ = [
    'CLIPJudge',
    'IPAdapterMetric',
    'ReferenceMatchMetric',
    'compare_reports',
    'format_comparison',
    'format_table',
    'get_judge',
    'plot_tradeoff',
    'summarize',
    'write_report',
]
