"""From CLIP cosine similarities to the percentages and grades we report.

* Reference preservation (CLIP-I) = cos(CLIP image embedding of the reference,
  of the generated image); as a percentage, ``100 · max(cos, 0)``.
* Prompt following (CLIP-T) = cos(CLIP embedding of the generated image, of the
  prompt); as a percentage, CLIPScore (Hessel et al. 2021):
  ``100 · min(1, 2.5 · max(cos, 0))``. Image–text cosines of CLIP sit around
  0.2–0.35, so the 2.5 scale puts them on the image–image range; the IP-Adapter
  paper reports CLIP-T on the same scale (0.588 for its SD1.5 adapter).
* Combined = the mean of the two percentages; the grade comes from it.
* Diversity = mean pairwise cosine distance ``1 - cos`` between the images one
  reference and prompt give with different seeds.

Raw cosines are always reported beside the percentages.
"""

import torch

__all__ = [
    'reference_preservation_percent',
    'prompt_following_percent',
    'combined_percent',
    'grade',
    'mean_pairwise_distance',
    'GRADE_BANDS',
]

CLIPSCORE_WEIGHT = 2.5
GRADE_BANDS = ((90.0, 'A+'), (80.0, 'A'), (70.0, 'B'), (60.0, 'C'))


def reference_preservation_percent(cosine: float) -> float:
    """CLIP-I cosine as a percentage."""
    return 100.0 * max(cosine, 0.0)


def prompt_following_percent(cosine: float) -> float:
    """CLIP-T cosine as a percentage (CLIPScore, w = 2.5, capped at 100)."""
    return 100.0 * min(1.0, CLIPSCORE_WEIGHT * max(cosine, 0.0))


def combined_percent(clip_i_cosine: float, clip_t_cosine: float) -> float:
    """The mean of the two percentages."""
    return (
        reference_preservation_percent(clip_i_cosine)
        + prompt_following_percent(clip_t_cosine)
    ) / 2


def grade(percent: float) -> str:
    """A+ ≥ 90 %, A 80–89, B 70–79, C 60–69, F < 60."""
    for threshold, letter in GRADE_BANDS:
        if percent >= threshold:
            return letter
    return 'F'


def mean_pairwise_distance(embeddings: torch.Tensor) -> float | None:
    """Mean ``1 - cos`` over all pairs of rows (None for fewer than 2)."""
    count = embeddings.shape[0]
    if count < 2:
        return None
    unit = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    cosines = unit @ unit.T
    pairs = torch.triu_indices(count, count, offset=1)
    return float((1 - cosines[pairs[0], pairs[1]]).mean())
