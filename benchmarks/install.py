"""This checkout installed for real: ``pip install --no-deps`` into a folder
of its own, where ``mim`` finds the kit's packaged tools (``.mim/``). For the
GPU run's ``mim_train`` step and the tests of ``mim train``."""

import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def install_checkout(site: str) -> str:
    """``pip install`` this checkout into ``site`` (no dependencies, no build
    isolation); ``site``."""
    subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'install',
            '--quiet',
            '--no-deps',
            '--no-build-isolation',
            '--target',
            site,
            REPO,
        ],
        check=True,
        capture_output=True,
    )
    return site
