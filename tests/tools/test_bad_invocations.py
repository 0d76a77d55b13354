"""Every bad command line of the corpus is one line, before any model loads."""

import os.path as osp
import shlex

import pytest
import torch

from diffengine_ipa.official_format import nest_official
from diffengine_ipa.work_dir import work_dir_lock

from ..conftest import REPO, TINY_CONFIGS
from ..official_format.bad_adapters import (
    good_state,
    kit_checkpoint,
    write_kit_checkpoint,
)
from .helpers import one_line_error, run_tool, run_tool_in_process

CORPUS = osp.join(osp.dirname(__file__), 'bad_invocations.txt')


def read_corpus() -> list[tuple[str, str]]:
    """``(command line, part of its error line)`` per corpus line."""
    entries = []
    with open(CORPUS, encoding='utf-8') as f:
        for line in f:
            if line.strip() and not line.startswith('#'):
                command, expected = line.rstrip('\n').split('  =>  ')
                entries.append((command, expected))
    return entries


@pytest.fixture
def places(tmp_path) -> dict[str, str]:
    """What the corpus's ``{placeholders}`` stand for."""
    (tmp_path / 'folder').mkdir()
    (tmp_path / 'a_file').write_text('x')
    (tmp_path / 'scratch').mkdir()
    state = good_state('base')
    write_kit_checkpoint(tmp_path / 'iter_5.pth', *kit_checkpoint(state))
    state['ip_adapter.1.to_k_ip.weight'][0, 0] = float('nan')
    torch.save(nest_official(state), tmp_path / 'nan.bin')
    (tmp_path / 'broken.py').write_text('model = dict(\n')
    return dict(
        config=TINY_CONFIGS['sd15'],
        flux_config=TINY_CONFIGS['flux'],
        ckpt=str(tmp_path / 'iter_5.pth'),
        nan=str(tmp_path / 'nan.bin'),
        image=osp.join(REPO, 'data/mini_dataset/images/cat.jpg'),
        dir=str(tmp_path / 'folder'),
        file=str(tmp_path / 'a_file'),
        tmp=str(tmp_path / 'scratch'),
        missing=str(tmp_path / 'no_such'),
        broken_config=str(tmp_path / 'broken.py'),
        locked=str(tmp_path / 'locked'),
    )


def test_every_bad_invocation_is_one_line(places):
    with work_dir_lock(places['locked']):  # another training holds it
        for command, expected in read_corpus():
            tool, *args = shlex.split(command.format(**places))
            result = run_tool_in_process(tool, *args)
            error = one_line_error(result)
            assert expected.format(**places) in error, (command, error)


@pytest.mark.slow
def test_a_bad_invocation_in_a_real_process(places):
    """The same, as a user's shell runs it (one process, no model loads)."""
    result = run_tool(
        'infer.py',
        places['config'],
        places['ckpt'],
        '--image',
        places['image'],
        '--steps',
        '0',
        check=False,
    )
    assert one_line_error(result) == (
        'error: argument --steps: must be at least 1, got 0 (see infer.py --help)'
    )
