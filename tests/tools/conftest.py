"""Fixtures of the tool tests."""
import os.path as osp

import pytest

from .helpers import run_tool


@pytest.fixture(scope='session')
def convert_tiny(train_tiny):
    """``convert_tiny(family)``: that family's trained work dir converted to
    both official formats (once per session)."""
    results = {}

    def convert(family: str) -> dict:
        if family not in results:
            work_dir = train_tiny(family)
            run_tool('convert.py', work_dir)  # default: its last checkpoint
            run_tool('convert.py', osp.join(work_dir, 'iter_10.pth'),
                     '--format', 'bin')
            results[family] = dict(
                safetensors=osp.join(work_dir, 'ip_adapter.safetensors'),
                bin=osp.join(work_dir, 'ip_adapter.bin'),
                checkpoint=osp.join(work_dir, 'iter_10.pth'))
        return results[family]

    return convert


@pytest.fixture(scope='session')
def converted(convert_tiny) -> dict:
    """The tiny SD1.5 run, converted."""
    return convert_tiny('sd15')
