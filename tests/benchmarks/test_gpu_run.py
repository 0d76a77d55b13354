"""The GPU script's CPU dry run: benchmarks/gpu/run.sh --device cpu --tiny
runs every step on the tiny architectures and writes its JSON, Markdown and
log, so the script is known to work before a GPU minute is spent."""

import json
import os
import subprocess
import sys

import pytest

from ..conftest import REPO, repo_build_lock

# The CPU dry run: every step on the tiny architectures, with time to spare.
DRY_RUN = ['--device', 'cpu', '--tiny', '--one-process']
STEPS = [
    'environment',
    'cuda_tests',
    'mim_train',
    'train_sd15',
    'sdxl_memory',
    'inference',
    'largest_family',
    'memory_modes',
]


@pytest.mark.slow
def test_cpu_dry_run_of_the_gpu_script(tmp_path, tmp_path_factory):
    out = tmp_path / 'out'
    env = dict(
        os.environ, OUT=str(out), SITE=str(tmp_path / 'site'), PYTHON=sys.executable
    )
    with repo_build_lock(tmp_path_factory):  # until the script has installed
        script = subprocess.Popen(
            [
                'bash',
                'benchmarks/gpu/run.sh',
                *DRY_RUN,
                '--deadline',
                '1500',
                '--work',
                str(tmp_path / 'work'),
            ],
            cwd=REPO,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output = ''
        for line in script.stdout:
            output += line
            if line.startswith(('installed in', 'installing the checkout')):
                break
    output += script.stdout.read()
    assert script.wait() == 0, output[-6000:]
    run = json.loads((out / 'gpu_run.json').read_text())
    assert list(run['steps']) == STEPS
    failed = {
        name: step['status']
        for name, step in run['steps'].items()
        if step['status'] != 'ok'
    }
    assert not failed, (failed, (out / 'gpu_run_log.txt').read_text()[-4000:])
    results = {name: step['result'] for name, step in run['steps'].items()}

    assert results['environment']['hardware_settings'][0].startswith('hardware: cpu')
    outcomes = results['cuda_tests']['outcomes']
    assert len(outcomes) >= 8 and set(outcomes.values()) == {'SKIPPED'}
    mim = results['mim_train']  # --amp bf16 (on a CPU --amp is bf16 too)
    assert list(mim) == ['bf16'] and mim['bf16']['exit_code'] == 0
    assert mim['bf16']['losses']
    assert "hardware.amp = 'bf16'" in mim['bf16']['hardware'][1]
    rows = results['train_sd15']['rows']
    assert [r['batch'] for r in rows] == [1]
    assert all(r['family'] == 'tiny_sd15' and r['ours_imgs_per_s'] > 0 for r in rows)
    assert results['train_sd15']['largest_batch'][0]['imgs_per_s'] > 0
    memory = results['sdxl_memory']['rows']
    assert [(r['gradient_checkpointing'], r['inputs']) for r in memory] == [
        (False, 'full'),
        (False, 'cached'),
        (True, 'full'),
        (True, 'cached'),
    ]
    assert all(r['peak_mem_gb'] > 0 for r in memory)
    inference = results['inference']['rows']
    assert [r['family'] for r in inference] == ['tiny_sd15', 'tiny_sdxl']
    # the kit's path and plain diffusers give the same image
    assert all(r['max_pixel_difference'] == 0 for r in inference)
    assert results['largest_family']['family'] == 'tiny_flux'
    check_memory_rows(results['memory_modes']['rows'])

    report = (out / 'gpu_run.md').read_text()
    assert '## train_sd15' in report and '| tiny_sd15 |' in report
    assert '===== inference: ok' in (out / 'gpu_run_log.txt').read_text()


def check_memory_rows(rows: list[dict]) -> None:
    """The dry run's memory rows: tiny SD1.5 freed, kept, int8; tiny FLUX."""
    assert [(r['family'], r['quantize'], r['encoders']) for r in rows] == [
        ('tiny_sd15', None, 'freed'),
        ('tiny_sd15', None, 'kept'),
        ('tiny_sd15', 'int8', 'freed'),
        ('tiny_flux', 'int8', 'freed'),
    ]
    assert all(not r['oom'] and r['step_s'] > 0 and r['peak_mem_gb'] > 0 for r in rows)
