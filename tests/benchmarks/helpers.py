"""Run a benchmark script of the repo as its README does: a subprocess."""

import os
import subprocess
import sys

from ..conftest import REPO


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess:
    """``python benchmarks/<script> ARGS`` from the checkout, offline; its
    exit code, stdout and stderr (not checked)."""
    return subprocess.run(
        [sys.executable, f'benchmarks/{script}', *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO, HF_HUB_OFFLINE='1'),
    )
