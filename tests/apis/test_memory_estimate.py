"""The memory estimate: a step on fake tensors, every allocation counted."""

import pytest
import torch

from diffengine_ipa.apis.memory_estimate import (
    StorageCounter,
    estimate_training_memory,
)


def test_counter_sees_allocations_and_frees():
    with StorageCounter() as counter:
        a = torch.empty(256, 1024)  # 1 MiB
        b = a * 2  # another
        del a
        c = torch.empty(128, 1024)  # 0.5 MiB, after a is gone
    assert counter.peak == 2 * 2**20
    assert counter.current == b.nbytes + c.nbytes


def test_estimate_of_a_tiny_step_grows_with_the_batch():
    one = estimate_training_memory('tiny_sd15', 1)
    two = estimate_training_memory('tiny_sd15', 2)
    assert one['trainable'] == 12_480
    assert one['weight_bytes'] < one['peak_bytes'] < two['peak_bytes']
    # Frozen weights in bf16 (the VAE, force_upcast, and the adapter in fp32).
    fp32 = estimate_training_memory('tiny_sd15', 1, frozen_dtype='fp32')
    assert fp32['weight_bytes'] > 1.5 * one['weight_bytes']


@pytest.mark.parametrize('architecture', ['tiny_sd3', 'tiny_flux'])
def test_dit_families_estimate(architecture):
    result = estimate_training_memory(architecture, 1)
    assert result['peak_bytes'] > result['weight_bytes'] > 0


def test_quantization_and_cache_rows_of_an_estimate():
    from diffengine_ipa.apis.memory_options import QUANTIZED_BITS, option_rows

    estimate = estimate_training_memory('tiny_sd15', 1)
    parts = estimate['parts']
    assert 0 < parts['largest_linear'] < parts['denoiser_linear']
    assert 0 < parts['freed_by_cache'] < estimate['weight_bytes']
    rows = {(r['quantize'], r['cached']): r for r in option_rows(estimate)}
    assert len(rows) == 8
    base = rows[None, False]['peak_gb'] * 1e9
    assert base == estimate['peak_bytes']
    cached = rows[None, True]['peak_gb'] * 1e9
    assert cached == pytest.approx(base - parts['freed_by_cache'])
    nf4 = rows['nf4', False]['peak_gb'] * 1e9
    saved = parts['denoiser_linear'] * (1 - QUANTIZED_BITS['nf4'] / 16)
    assert nf4 == pytest.approx(base - saved + parts['largest_linear'])
    assert (
        rows['nf4', True]['peak_gb']
        < rows['int8', True]['peak_gb']
        < rows[None, True]['peak_gb']
    )
    assert rows[None, False]['fits'] == [16, 24, 48, 80]  # tiny fits all


def test_the_largest_batch_is_the_linear_fit_under_the_budget():
    from diffengine_ipa.apis.memory_estimate import largest_batch

    rows = [dict(batch=1, peak_bytes=10e9), dict(batch=2, peak_bytes=12e9)]
    assert largest_batch(rows, 79e9) == 35  # 8 GB fixed + 2 GB per image
    assert largest_batch(rows, 9e9) == 0
    assert largest_batch(rows[:1], 79e9) is None
    assert largest_batch([rows[0], dict(rows[0], batch=2)], 79e9) is None
