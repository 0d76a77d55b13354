"""Peak memory of training steps from the embedding cache, with the frozen
encoders kept and with them freed (``ReleaseEncodersHook``).

Each mode runs in its own process (so one's allocations cannot hide in the
other's peak): the architecture with random weights is built, the batch is
encoded once (as the cache holds it), the encoders are freed or kept, and
``--steps`` training steps run while the resident size (RSS; on CUDA the
allocator's peak) is sampled::

    python benchmarks/resident_memory.py --architecture sd15 --resolution 256 \\
        --out benchmarks/resident_memory_cpu.json
"""

import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # the benchmarks package
MODES = ('kept', 'freed')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--architecture',
        default='tiny_sd15',
        help='a registered architecture (random weights)',
    )
    parser.add_argument('--resolution', type=int, default=None)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--steps', type=int, default=2)
    parser.add_argument(
        '--mode',
        choices=MODES,
        default=None,
        help='one mode in this process (default: both, each in a child process)',
    )
    parser.add_argument('--out', default=None, help='append the rows to this JSON list')
    return parser.parse_args(argv)


def measure(
    architecture: str, resolution: int | None, batch: int, steps: int, mode: str
) -> dict:
    """One row: the peak memory of ``steps`` cached steps in ``mode``."""
    import torch

    from benchmarks.benchmark import (
        PeakMemory,
        build_benchmark_model,
        cached_inputs,
        device_name,
        make_inputs,
    )
    from diffengine_ipa.models.random_models.architectures import architecture_spec
    from diffengine_ipa.models.resident_encoders import release_encoders

    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    resolution = resolution or architecture_spec(architecture)['resolution']
    start = time.perf_counter()
    model = build_benchmark_model(architecture, device=device)
    inputs = cached_inputs(model, make_inputs(model, batch, resolution, device))
    freed = release_encoders(model) if mode == 'freed' else []
    model.empty_prompt_encodings()  # kept: computed before the steps too
    resident = sum(p.numel() * p.element_size() for p in model.parameters())
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4
    )
    memory = PeakMemory(device)
    with memory.measure():
        for _ in range(steps):
            model(inputs)['loss'].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return dict(
        architecture=architecture,
        resolution=resolution,
        batch=batch,
        steps=steps,
        mode=mode,
        freed=freed,
        resident_weights_gb=resident / 2**30,
        peak_step_memory_gb=memory.peak_gb,
        device=device_name(device),
        seconds=time.perf_counter() - start,
        torch=torch.__version__,
    )


def run_mode(args: argparse.Namespace, mode: str) -> dict:
    """``mode`` measured in a child process."""
    command = [
        sys.executable,
        osp.abspath(__file__),
        '--architecture',
        args.architecture,
        '--batch',
        str(args.batch),
        '--steps',
        str(args.steps),
        '--mode',
        mode,
    ]
    if args.resolution:
        command += ['--resolution', str(args.resolution)]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])),
    )
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.mode:
        print(
            json.dumps(
                measure(
                    args.architecture,
                    args.resolution,
                    args.batch,
                    args.steps,
                    args.mode,
                )
            )
        )
        return
    rows = [run_mode(args, mode) for mode in MODES]
    kept, freed = (row['peak_step_memory_gb'] for row in rows)
    for row in rows:
        print(
            f'{row["architecture"]} {row["resolution"]} px, encoders '
            f'{row["mode"]}: weights {row["resident_weights_gb"]:.2f} GB, '
            f'peak {row["peak_step_memory_gb"]:.2f} GB'
        )
    print(f'freed {kept - freed:.2f} GB of {kept:.2f} GB')
    if args.out:
        previous = json.load(open(args.out)) if osp.exists(args.out) else []
        with open(args.out, 'w') as f:
            json.dump(previous + rows, f, indent=2)
            f.write('\n')


if __name__ == '__main__':
    main()
