"""Every GPU check of the kit in one time-boxed command.

    python benchmarks/gpu/run.py [--device cuda|cpu] [--tiny] [--out DIR]
        [--work DIR] [--deadline SECONDS] [--only STEP ...]

Runs the steps of ``steps.py`` one after another, each in a process of its
own with its own time limit, all inside ``--deadline`` (default 470 s: the
whole fits in 8 minutes): the environment, the cuda-marked tests, tiny
training through ``mim train`` (``--amp``, ``--amp bf16``), full-size SD1.5
training (batch 1, 8 and the largest that fits: img/s, MFU, peak memory),
SDXL 1024 px peak memory with and without gradient checkpointing, 30-step
generation latency (the kit against plain diffusers, and compiled), and one
training step of the largest family that fits, and the memory rows
(quantized bases, encoders freed, regional compile; FLUX.1 1024 px in NF4,
see memory_steps.py). After every step it rewrites
``gpu_run.json``, ``gpu_run.md`` and ``gpu_run_log.txt`` in ``--out``, so
whatever finished survives a kill. ``--device cpu --tiny --one-process`` is
the dry run the test suite does (tests/benchmarks/test_gpu_run.py): the same
steps, one after another in this process (the libraries imported once, not
eight times), each given what is left of ``--deadline``.

benchmarks/gpu/run.sh installs the kit from the wheelhouse first.
"""

import argparse
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time
import traceback

from report import markdown
from steps import STEPS, Context

# Seconds each step may take at most (the deadline may leave it less).
BUDGETS = dict(
    environment=40,
    cuda_tests=130,
    mim_train=75,
    train_sd15=110,
    sdxl_memory=70,
    inference=110,
    largest_family=80,
    memory_modes=150,
)
MIN_USEFUL = 15  # a step with less time left than this is skipped


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    parser.add_argument(
        '--tiny', action='store_true', help='tiny architectures (the CPU dry run)'
    )
    parser.add_argument('--out', default=os.environ.get('OUT', 'gpu_results'))
    parser.add_argument('--work', default='/tmp/diffengine_ipa_gpu_run')
    parser.add_argument(
        '--deadline', type=float, default=470, help='seconds for everything'
    )
    parser.add_argument(
        '--budget-scale',
        type=float,
        default=1.0,
        help="multiply each step's time limit (a CPU dry run needs more than a GPU)",
    )
    parser.add_argument(
        '--one-process',
        action='store_true',
        help='each step in this process, in what is left of --deadline (dry run)',
    )
    parser.add_argument(
        '--only', nargs='+', choices=list(STEPS), help='run these steps only'
    )
    parser.add_argument('--step', choices=list(STEPS), help=argparse.SUPPRESS)
    parser.add_argument('--result', help=argparse.SUPPRESS)
    parser.add_argument('--deadline-at', type=float, help=argparse.SUPPRESS)
    return parser.parse_args()


def run_step(args: argparse.Namespace) -> None:
    """The child process: one step."""
    ctx = Context(args.device, args.tiny, args.work, args.result, args.deadline_at)
    STEPS[args.step](ctx)


def launch(args: argparse.Namespace, name: str, timeout: float) -> dict:
    """One step in a child process, killed (with its children) at
    ``timeout``; what it saved is kept either way."""
    result = osp.join(args.work, f'{name}.json')
    log = osp.join(args.work, f'{name}.log')
    if osp.exists(result):
        os.remove(result)
    command = [
        sys.executable,
        osp.abspath(__file__),
        '--step',
        name,
        '--device',
        args.device,
        '--work',
        args.work,
        '--result',
        result,
        '--deadline-at',
        str(time.time() + timeout),
    ]
    if args.tiny:
        command.append('--tiny')
    start = time.time()
    with open(log, 'w') as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
            status = 'ok' if code == 0 else f'failed (exit {code})'
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = f'timed out ({timeout:.0f} s)'
    entry = dict(status=status, seconds=round(time.time() - start, 1))
    if osp.exists(result):
        with open(result) as f:
            entry['result'] = json.load(f)
    with open(log, errors='replace') as f:
        entry['log_tail'] = f.read()[-4000:]
    return entry


def run_here(args: argparse.Namespace, name: str, timeout: float) -> dict:
    """One step in this process; a step that raises is recorded as failed,
    with its traceback as the log."""
    result = osp.join(args.work, f'{name}.json')
    if osp.exists(result):
        os.remove(result)
    ctx = Context(args.device, args.tiny, args.work, result, time.time() + timeout)
    start = time.time()
    try:
        STEPS[name](ctx)
        status, log = 'ok', ''
    except Exception as err:  # noqa: BLE001 - the report names it
        status, log = f'failed ({type(err).__name__})', traceback.format_exc()
    entry = dict(status=status, seconds=round(time.time() - start, 1))
    if ctx.result:
        entry['result'] = ctx.result
    entry['log_tail'] = log[-4000:]
    return entry


def write(args: argparse.Namespace, run: dict) -> None:
    """The JSON, the Markdown report and the logs, rewritten atomically."""
    os.makedirs(args.out, exist_ok=True)
    logs = '\n'.join(
        f'===== {name}: {entry["status"]}\n{entry["log_tail"]}'
        for name, entry in run['steps'].items()
    )
    summary = {
        **run,
        'steps': {
            name: {k: v for k, v in entry.items() if k != 'log_tail'}
            for name, entry in run['steps'].items()
        },
    }
    for name, text in (
        ('gpu_run.json', json.dumps(summary, indent=1, default=str)),
        ('gpu_run.md', markdown(summary)),
        ('gpu_run_log.txt', logs),
    ):
        path = osp.join(args.out, name)
        with open(f'{path}.tmp', 'w') as f:
            f.write(text)
        os.replace(f'{path}.tmp', path)


def main() -> None:
    args = parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.step:
        return run_step(args)
    start = time.time()
    run = dict(
        device=args.device,
        tiny=args.tiny,
        deadline_s=args.deadline,
        started=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
        steps={},
    )
    for name in args.only or list(STEPS):
        left = args.deadline - (time.time() - start)
        if left < MIN_USEFUL:
            run['steps'][name] = dict(
                status='skipped (no time left)', seconds=0, log_tail=''
            )
        else:
            limit = (
                left
                if args.one_process
                else min(BUDGETS[name] * args.budget_scale, left)
            )
            print(
                f'[{time.time() - start:5.0f} s] {name} (at most {limit:.0f} s)',
                flush=True,
            )
            if args.one_process:
                run['steps'][name] = run_here(args, name, limit)
            else:
                run['steps'][name] = launch(args, name, limit)
            print(
                f'[{time.time() - start:5.0f} s] {name}: '
                f'{run["steps"][name]["status"]}',
                flush=True,
            )
        run['seconds'] = round(time.time() - start, 1)
        write(args, run)
    print(markdown(run))
    print(f'wrote {args.out}/gpu_run.json, gpu_run.md, gpu_run_log.txt')


if __name__ == '__main__':
    main()
