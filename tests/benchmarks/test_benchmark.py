"""tools/benchmark.py on tiny architectures: runs in seconds, well-formed
JSON, and the cached path does less work than the reference loop."""

import json

import pytest

from ..tools.helpers import run_tool

FIELDS = {
    'device',
    'family',
    'batch',
    'resolution',
    'dtype',
    'reference_imgs_per_s',
    'ours_imgs_per_s',
    'speedup',
    'speedup_same_allocator',
    'reference_peak_mem_gb',
    'ours_peak_mem_gb',
    'model_tflops_per_step',
    'achieved_tflops',
}


@pytest.mark.slow
def test_benchmark_tiny_emits_json(tmp_path):
    out = tmp_path / 'bench.json'
    result = run_tool(
        'benchmark.py',
        '--family',
        'tiny_sd15',
        '--steps',
        '2',
        '--infer-steps',
        '2',
        '--dtype',
        'fp32',
        '--out',
        out,
    )
    assert result.stdout.startswith('hardware: ')  # what auto chose (threads)
    assert '| tiny_sd15 |' in result.stdout
    (row,) = json.loads(out.read_text())
    assert FIELDS <= set(row)
    assert row['family'] == 'tiny_sd15' and row['batch'] == 1
    assert row['resolution'] == 64 and row['dtype'] == 'fp32'
    assert row['reference_imgs_per_s'] > 0 and row['ours_imgs_per_s'] > 0
    # Our path skips the encoders: fewer FLOPs per step than the reference.
    assert 0 < row['model_tflops_per_step'] < row['reference_tflops_per_step']
    assert row['inference_latency_s'] > 0
    # Auto retains freed host memory on a glibc CPU; the reference loop then
    # runs again with that allocator too.
    assert 'hardware.allocator = ' in result.stdout
    if row['allocator'] == 'retain':
        assert row['reference_same_allocator_step_s'] > 0
    run_tool(
        'benchmark.py',
        '--family',
        'tiny_flux',
        '--steps',
        '1',
        '--infer-steps',
        '0',
        '--dtype',
        'bf16',
        '--allocator',
        'default',
        '--out',
        out,
    )
    rows = json.loads(out.read_text())
    assert [(r['family'], r['dtype']) for r in rows] == [
        ('tiny_sd15', 'fp32'),
        ('tiny_flux', 'bf16'),
    ]
    assert rows[1]['inference_latency_s'] is None
    assert rows[1]['allocator'] == 'default'
    assert rows[1]['speedup_same_allocator'] == rows[1]['speedup']
    assert 0 < rows[1]['model_tflops_per_step'] < rows[1]['reference_tflops_per_step']


def test_dense_bf16_peaks_by_card_name():
    from benchmarks.device_peaks import dense_bf16_peak_tflops

    assert dense_bf16_peak_tflops('NVIDIA H100 80GB HBM3') == 989.0
    assert dense_bf16_peak_tflops('NVIDIA H100 PCIe') == 756.0
    assert dense_bf16_peak_tflops('NVIDIA H200') == 989.0
    assert dense_bf16_peak_tflops('NVIDIA A100-SXM4-80GB') == 312.0
    assert dense_bf16_peak_tflops('NVIDIA L4') == 121.0
    assert dense_bf16_peak_tflops('AMD EPYC (2 threads)') is None
