"""Evaluation: CLIP scores of generated images, reports and grids."""
from .clip_judge import CLIPJudge, get_judge
from .ip_adapter_metric import IPAdapterMetric
from .report import format_table, summarize, write_report

__all__ = ['CLIPJudge', 'IPAdapterMetric', 'format_table', 'get_judge',
           'summarize', 'write_report']
