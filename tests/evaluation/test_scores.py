"""The score formulas on hand-built numbers."""

import math

import pytest
import torch
import torch.nn.functional as F

from diffengine_ipa.evaluation import scores


@pytest.mark.parametrize('cosine, percent', [(0.83, 83.0), (1.0, 100.0), (-0.2, 0.0)])
def test_reference_preservation_is_cosine_as_percent(cosine, percent):
    assert scores.reference_preservation_percent(cosine) == pytest.approx(percent)


@pytest.mark.parametrize(
    'cosine, percent', [(0.2352, 58.8), (0.3, 75.0), (0.5, 100.0), (-0.1, 0.0)]
)
def test_prompt_following_is_clipscore(cosine, percent):
    # 0.2352 · 2.5 = 0.588: the CLIP-T the IP-Adapter paper reports.
    assert scores.prompt_following_percent(cosine) == pytest.approx(percent)


def test_combined_and_grades():
    assert scores.combined_percent(0.9, 0.36) == pytest.approx((90 + 90) / 2)
    assert [scores.grade(p) for p in (95, 90, 89.9, 80, 75, 60, 59.9)] == [
        'A+',
        'A+',
        'A',
        'A',
        'B',
        'C',
        'F',
    ]


def test_diversity_of_hand_built_embeddings():
    same = torch.ones(3, 4)
    assert scores.mean_pairwise_distance(same) == pytest.approx(0.0, abs=1e-7)
    orthogonal = torch.eye(3)
    assert scores.mean_pairwise_distance(orthogonal) == pytest.approx(1.0)
    pair = torch.tensor([[1.0, 0.0], [math.cos(1.0), math.sin(1.0)]])
    assert scores.mean_pairwise_distance(pair) == pytest.approx(1 - math.cos(1.0))
    assert scores.mean_pairwise_distance(F.normalize(torch.randn(1, 8))) is None
