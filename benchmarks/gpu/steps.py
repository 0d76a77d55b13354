"""The steps of benchmarks/gpu/run.py, each run in a process of its own.

A step gets a :class:`Context` and records what it measures with
``ctx.save(key, value)`` as it goes: the result file is rewritten after every
measurement, so a step killed at its time limit still leaves what it had.
With ``--tiny`` every step uses the tiny architectures (the CPU dry run).
"""

import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from memory_steps import memory_modes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = 'configs/ip_adapter/tiny_sd15_mini_dataset.py'
CUDA_TESTS = (
    'tests/engine/test_cuda_training.py',
    'tests/tools/test_cuda_convert.py',
    'tests/models/test_quantization.py',
)


@dataclass
class Context:
    """What a step runs on and where it writes.

    Args:
        device: ``'cuda'`` or ``'cpu'``.
        tiny: The tiny architectures instead of the full-size ones.
        work: A scratch folder shared by the steps.
        result_file: This step's JSON result.
        deadline: ``time.time()`` by which the step must end.
    """

    device: str
    tiny: bool
    work: str
    result_file: str
    deadline: float
    result: dict = field(default_factory=dict)

    def save(self, key: str, value: Any) -> None:
        self.result[key] = value
        tmp = f'{self.result_file}.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.result, f, indent=1, default=str)
        os.replace(tmp, self.result_file)

    def left(self) -> float:
        return self.deadline - time.time()

    def arch(self, full: str) -> str:
        """The architecture to use for a full-size one."""
        tiny = dict(
            sd15='tiny_sd15',
            sdxl='tiny_sdxl',
            flux1_dev='tiny_flux',
            sd35_large='tiny_sd3',
        )
        return tiny[full] if self.tiny else full

    @property
    def dtype(self) -> str:
        """bf16 on the GPU; on a CPU what the hardware settings choose."""
        if self.device == 'cuda':
            return 'bf16'
        from diffengine_ipa.engine import hardware

        caps = hardware.detect(self.device)
        return hardware.decide(caps, dict(amp='auto'))['amp'].value

    @property
    def on_device(self) -> bool:
        return self.device == 'cuda'


def environment(ctx: Context) -> None:
    """Versions, the card, the hardware settings auto-detection picks, and
    the measured matmul peak."""
    import importlib.metadata as metadata

    import torch

    from benchmarks.benchmark import device_name, measured_matmul_peak
    from benchmarks.device_peaks import dense_bf16_peak_tflops
    from diffengine_ipa.engine import hardware

    versions = {}
    for name in (
        'torch',
        'diffusers',
        'transformers',
        'mmengine',
        'mmcv-lite',
        'openmim',
        'accelerate',
        'safetensors',
        'diffengine_ipa',
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    ctx.save('versions', versions)
    ctx.save('python', sys.version.split()[0])
    ctx.save('device', device_name(ctx.device))
    if ctx.device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        ctx.save(
            'cuda',
            dict(
                version=torch.version.cuda,
                capability=list(torch.cuda.get_device_capability()),
                memory_gb=props.total_memory / 2**30,
                multiprocessors=props.multi_processor_count,
            ),
        )
        smi = subprocess.run(
            [
                'nvidia-smi',
                '--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit',
                '--format=csv,noheader',
            ],
            capture_output=True,
            text=True,
        )
        ctx.save('nvidia_smi', smi.stdout.strip())
    caps = hardware.detect(ctx.device)
    decisions = hardware.decide(caps, {k: 'auto' for k in hardware.SETTINGS})
    ctx.save('hardware_settings', hardware.report(caps, decisions))
    dtype = torch.bfloat16 if ctx.device == 'cuda' else torch.float32
    ctx.save('matmul_peak_tflops', measured_matmul_peak(ctx.device, dtype))
    ctx.save('spec_bf16_peak_tflops', dense_bf16_peak_tflops(device_name(ctx.device)))


def cuda_tests(ctx: Context) -> None:
    """The cuda-marked tests (all skipped without CUDA)."""
    log = osp.join(ctx.work, 'cuda_tests.log')
    command = [
        sys.executable,
        '-m',
        'pytest',
        '-m',
        'cuda',
        '-v',
        '-rA',
        '-p',
        'no:cacheprovider',
        *CUDA_TESTS,
    ]
    ctx.save('command', ' '.join(command[1:]))
    with open(log, 'w') as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, HF_HUB_OFFLINE='1'),
        )
        try:
            code = process.wait(timeout=max(ctx.left() - 5, 1))
        except subprocess.TimeoutExpired:
            process.kill()
            code = 'timed out'
    outcomes = {}
    with open(log) as f:
        for line in f:
            for status in ('PASSED', 'FAILED', 'ERROR', 'SKIPPED'):
                if f' {status}' in line and '::' in line:
                    outcomes[line.split()[0]] = status
    ctx.save('outcomes', outcomes)
    ctx.save('exit_code', code)
    with open(log) as f:
        ctx.save('tail', f.read()[-3000:])


def _installed_site(ctx: Context) -> str | None:
    """A folder to put on PYTHONPATH so that mim finds the kit as a real
    install (None: the importable kit already is one)."""
    import diffengine_ipa
    from benchmarks.install import install_checkout

    root = osp.dirname(diffengine_ipa.__file__)
    if osp.isfile(osp.join(root, '.mim', 'tools', 'train.py')):
        return None
    site = osp.join(ctx.work, 'site')
    if not osp.isdir(osp.join(site, 'diffengine_ipa')):
        install_checkout(site)
    return site


def mim_train(ctx: Context) -> None:
    """The tiny SD1.5 config through ``mim train``: ``--amp`` (fp16 with
    loss scaling on CUDA) and ``--amp bf16``; on a CPU, where ``--amp`` is
    bf16 too, the second only."""
    from diffengine_ipa.models.random_models import write_base_model

    folder = osp.join(ctx.work, 'tiny_models')
    base, encoder = write_base_model('tiny_sd15', folder)
    site = _installed_site(ctx)
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    if site:
        env['PYTHONPATH'] = os.pathsep.join([site, env.get('PYTHONPATH', '')])
    modes = (('amp', ['--amp']), ('bf16', ['--amp', 'bf16']))
    for name, amp in modes if ctx.device == 'cuda' else modes[1:]:
        work_dir = osp.join(ctx.work, f'mim_{name}')
        command = [
            sys.executable,
            '-m',
            'mim',
            'train',
            'diffengine_ipa',
            TINY_CONFIG,
            '--work-dir',
            work_dir,
            *amp,
            '--cfg-options',
            f'model.pretrained_model_name_or_path={base}',
            f'model.image_encoder.pretrained_model_name_or_path={encoder}',
            f'train_dataloader.dataset.ann_file={REPO}/data/mini_dataset/data.json',
            'train_cfg.max_epochs=1',
            'validate=False',
        ]
        start = time.time()
        try:
            done = subprocess.run(
                command,
                cwd=REPO,
                env=env,
                text=True,
                capture_output=True,
                timeout=max(ctx.left() - 5, 1),
            )
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as err:
            code, output = 'timed out', str(err.stdout or '')
        losses = []
        for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
            with open(path) as f:
                losses += [json.loads(line)['loss'] for line in f if '"loss"' in line]
        ctx.save(
            name,
            dict(
                command=f'mim train diffengine_ipa {TINY_CONFIG} {" ".join(amp)}',
                exit_code=code,
                seconds=time.time() - start,
                losses=losses,
                hardware=[
                    line for line in output.splitlines() if line.startswith('hardware')
                ],
                tail=output[-1500:] if code != 0 else '',
            ),
        )


def train_sd15(ctx: Context) -> None:
    """SD1.5 at 512 px (tiny: 64): batch 1 and 8, reference loop and fast
    path, then the largest batch that fits (the CPU dry run: batch 1, then
    2)."""
    from benchmarks.benchmark import run_benchmark
    from benchmarks.measurements import largest_batch

    arch, rows = ctx.arch('sd15'), []
    steps = 5 if ctx.device == 'cuda' else 1
    for batch in (1, 8) if ctx.device == 'cuda' else (1,):
        rows.append(
            run_benchmark(
                arch,
                batch,
                dtype=ctx.dtype,
                steps=steps,
                infer_steps=0,
                device=ctx.device,
                on_device=ctx.on_device,
            )
        )
        ctx.save('rows', rows)
    batches = (16, 32, 64, 128, 256) if ctx.device == 'cuda' else (2,)
    ctx.save(
        'largest_batch',
        largest_batch(
            arch,
            ctx.dtype,
            ctx.device,
            batches,
            steps=3 if ctx.device == 'cuda' else 1,
            deadline=ctx.deadline - 20,
            on_device=ctx.on_device,
        ),
    )


def sdxl_memory(ctx: Context) -> None:
    """SDXL at 1024 px (tiny: 64), batch 1: step time and peak memory with
    and without gradient checkpointing."""
    from benchmarks.measurements import train_step_memory

    ctx.save(
        'rows',
        train_step_memory(
            ctx.arch('sdxl'),
            ctx.dtype,
            ctx.device,
            steps=3 if ctx.device == 'cuda' else 1,
            on_device=ctx.on_device,
        ),
    )


def inference(ctx: Context) -> None:
    """30-step generation (tiny: 4 steps), SD1.5 then SDXL: the kit against
    plain diffusers, and compiled (SDXL only if time is left)."""
    from benchmarks.measurements import inference_latency

    cuda, rows = ctx.device == 'cuda', []
    for full in ('sd15', 'sdxl'):
        compile_now = cuda and (full == 'sd15' or ctx.left() > 200)
        rows.append(
            inference_latency(
                ctx.arch(full),
                ctx.dtype,
                ctx.device,
                steps=30 if cuda else 4,
                compile_denoiser=compile_now,
                on_device=ctx.on_device,
            )
        )
        ctx.save('rows', rows)


def largest_family(ctx: Context) -> None:
    """One training step of the largest family that fits (FLUX.1-dev, else
    SD3.5-Large) at 1024 px, batch 1, bf16 with gradient checkpointing."""
    from benchmarks.measurements import (
        free_memory,
        is_out_of_memory,
        train_step_memory,
    )

    for full in ('flux1_dev', 'sd35_large'):
        arch = ctx.arch(full)
        try:
            rows = train_step_memory(
                arch,
                ctx.dtype,
                ctx.device,
                steps=2,
                on_device=ctx.on_device,
                checkpointing=(True,),
                build_dtype='bf16' if ctx.on_device else None,
            )
        except (RuntimeError, MemoryError) as err:
            if not is_out_of_memory(err):
                raise
            ctx.save(f'{arch}_error', 'out of memory while building')
            free_memory()
            continue
        ctx.save('family', arch)
        ctx.save('rows', rows)
        if not all(row.get('oom') for row in rows):
            return


STEPS = dict(
    environment=environment,
    cuda_tests=cuda_tests,
    mim_train=mim_train,
    train_sd15=train_sd15,
    sdxl_memory=sdxl_memory,
    inference=inference,
    largest_family=largest_family,
    memory_modes=memory_modes,
)
