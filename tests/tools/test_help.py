"""``--help`` answers at once: no tool imports torch, diffusers or MMEngine's
runner before its arguments parse."""

import os
import os.path as osp
import subprocess
import sys

from ..conftest import REPO

TOOLS = sorted(
    name for name in os.listdir(osp.join(REPO, 'tools')) if name.endswith('.py')
)

PROBE = """
import runpy, sys, time
heavy = ('torch', 'diffusers', 'transformers', 'mmengine.runner')
for path in sys.argv[1:]:
    sys.argv = [path, '--help']
    start = time.perf_counter()
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit:
        pass
    seconds = time.perf_counter() - start
    loaded = [name for name in heavy if name in sys.modules]
    print(f'RESULT {path} {seconds:.3f} {",".join(loaded) or "-"}',
          file=sys.stderr)
"""


def test_help_imports_nothing_heavy():
    paths = [osp.join(REPO, 'tools', name) for name in TOOLS]
    result = subprocess.run(
        [sys.executable, '-c', PROBE, *paths],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO),
        cwd=REPO,
    )
    rows = [
        line.split()[1:]
        for line in result.stderr.splitlines()
        if line.startswith('RESULT ')
    ]
    assert len(rows) == len(TOOLS), result.stderr[-3000:]
    for path, seconds, loaded in rows:
        assert loaded == '-', f'{path} --help imports {loaded}'
        assert float(seconds) < 1.0, f'{path} --help took {seconds} s'
    assert 'usage:' in result.stdout


def test_every_flag_says_its_default(monkeypatch):
    """Each option's help names its default (what happens without it)."""
    import argparse
    import runpy

    parsers = {}

    def capture(self, *args, **kwargs):
        parsers[name] = self
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    for name in TOOLS:
        path = osp.join(REPO, 'tools', name)
        monkeypatch.setattr(sys, 'argv', [path])
        try:
            runpy.run_path(path, run_name='__main__')
        except SystemExit:
            pass
        flags = [
            action.option_strings[0]
            for action in parsers[name]._actions
            if action.option_strings
            and action.option_strings[0] != '-h'
            and 'default' not in (action.help or '')
        ]
        assert not flags, f'{name}: {flags} do not say their default'
