"""Run a tool of the repo as a user would: a subprocess."""

import os
import os.path as osp
import subprocess
import sys

from ..conftest import REPO


def run_tool(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python tools/<name> ARGS`` on this checkout's package."""
    path = os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')])
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', name), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=path),
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f'{name} failed ({result.returncode}):\n'
            f'{result.stdout[-2000:]}\n{result.stderr[-3000:]}'
        )
    return result


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The tool failed with exit 2 and a single ``error:`` line, no traceback."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


def run_tool_in_process(name: str, *args: str) -> subprocess.CompletedProcess:
    """``python tools/<name> ARGS`` run inside this process (``runpy``), for
    corpora of invocations that must fail before any model loads: the exit
    code, stdout and stderr a user would see, without a process start each.
    An uncaught exception is returned as its traceback on stderr."""
    import contextlib
    import io
    import runpy
    import signal
    import traceback

    script = osp.join(REPO, 'tools', name)
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, [script, *map(str, args)]
    sigint = signal.getsignal(signal.SIGINT)  # a tool's Ctrl-C ignores the next
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(script, run_name='__main__')
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except Exception:  # noqa: BLE001 - what a user would see as a traceback
        err.write(traceback.format_exc())
        code = 1
    finally:
        sys.argv = argv
        signal.signal(signal.SIGINT, sigint)
    return subprocess.CompletedProcess(sys.argv, code, out.getvalue(), err.getvalue())


def run_tool_here(
    name: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess:
    """:func:`run_tool`, in this process (:func:`run_tool_in_process`): for
    tests of what a tool computes or which line it fails with, where the
    process itself (its start, a kill, the installed package) is not what is
    tested. Saves a process start (importing torch, diffusers, MMEngine)."""
    result = run_tool_in_process(name, *args)
    if check and result.returncode != 0:
        raise AssertionError(
            f'{name} failed ({result.returncode}):\n'
            f'{result.stdout[-2000:]}\n{result.stderr[-3000:]}'
        )
    return result
