"""benchmarks/resident_memory.py: the kept and freed rows, each measured in a
process of its own (tiny SD1.5 here; docs/speed_and_memory.md has the
full-size figures)."""

import json

import pytest

from .helpers import run_benchmark


@pytest.mark.slow
def test_resident_memory_rows(tmp_path):
    out = tmp_path / 'rows.json'
    result = run_benchmark(
        'resident_memory.py', '--architecture', 'tiny_sd15', '--steps', 1, '--out', out
    )
    assert result.returncode == 0, result.stderr[-3000:]
    kept, freed = json.loads(out.read_text())
    assert (kept['mode'], freed['mode']) == ('kept', 'freed')
    assert kept['freed'] == [] and freed['freed'] == [
        'family.text_encoder',
        'image_encoder',
        'family.vae.encoder',
    ]
    assert 0 < freed['resident_weights_gb'] < kept['resident_weights_gb']
    assert freed['peak_step_memory_gb'] > 0
    assert 'encoders freed: weights' in result.stdout
