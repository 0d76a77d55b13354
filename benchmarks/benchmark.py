"""Training-step throughput: the reference loop against this kit's path.

Both run the same model, batch and precision in one process:

* reference: the frozen VAE, text and image encoders run every step, as the
  official ``tutorial_train.py`` (and diffengine) do;
* ours: the encoders' outputs come precomputed (as from an embedding cache),
  the UNet runs channels-last (unless asked not to; and compiled, if asked),
  and with ``allocator='retain'`` (what the hardware settings choose on a
  glibc CPU) freed host memory is kept for the next step.

The reference loop runs first, with the process's allocator as an official
script has it; where ours retains freed memory, the reference loop then runs
again with that allocator too (``speedup_same_allocator``), so that the gain
of the allocator and that of the cache are told apart.

Models are the registered architectures with random weights (same shapes and
FLOPs as the real ones), each with the image encoder it is paired with, at its
training resolution; FLOPs are counted by ``torch.utils.flop_counter``.
"""

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.device_peaks import dense_bf16_peak_tflops
from diffengine_ipa.dtypes import to_dtype
from diffengine_ipa.engine.hardware import read_cpuinfo
from diffengine_ipa.engine.host_memory import retain_freed_memory
from diffengine_ipa.models import IPAdapter
from diffengine_ipa.models.generation import live_pipeline
from diffengine_ipa.models.random_models.architectures import (
    architecture_spec,
)
from diffengine_ipa.models.random_models.architectures import (
    base_architectures as benchmark_architectures,
)

__all__ = [
    'benchmark_architectures',
    'build_benchmark_model',
    'make_inputs',
    'cached_inputs',
    'timed_steps',
    'run_benchmark',
    'format_rows',
    'PeakMemory',
    'device_name',
    'sync',
]


def device_name(device: str) -> str:
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(device)
    name, _ = read_cpuinfo()
    return f'{name} ({torch.get_num_threads()} threads)'


class PeakMemory:
    """Peak memory of a block: CUDA's allocator peak, or on a CPU the peak
    resident size of the process (sampled every 5 ms)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_gb = 0.0

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            yield
            torch.cuda.synchronize()
            self.peak_gb = torch.cuda.max_memory_allocated() / 2**30
            return
        import psutil

        process, peak, done = psutil.Process(), [0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], process.memory_info().rss)
                done.wait(0.005)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.peak_gb = peak[0] / 2**30


def measured_matmul_peak(
    device: str, dtype: torch.dtype, budget_s: float = 1.0
) -> float:
    """TFLOP/s of a large matmul here: the peak that MFU is quoted against.
    Time-boxed: as many runs as fit ``budget_s`` after the warm-up, and the
    warm-up alone where it takes over a quarter of it (a CPU without native
    bf16 takes seconds a matmul)."""
    cuda = device.startswith('cuda')
    size = 4096 if cuda else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    runs, start = 3 if cuda else 1, time.perf_counter()
    for _ in range(runs):
        a @ b
    sync(device)
    if time.perf_counter() - start < budget_s / 4:
        runs, start = 0, time.perf_counter()
        while runs < (20 if cuda else 5) and time.perf_counter() - start < budget_s:
            a @ b
            sync(device)
            runs += 1
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e12


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def make_inputs(
    model: IPAdapter, batch: int, resolution: int, device: str
) -> dict[str, Any]:
    """A batch as the data pipeline makes it (SDXL's time ids included,
    which the other families ignore)."""
    generator = torch.Generator().manual_seed(0)
    size = model.image_encoder.image_size
    sizes = [resolution, resolution, 0, 0, resolution, resolution]
    return dict(
        pixel_values=(
            torch.rand(batch, 3, resolution, resolution, generator=generator) * 2 - 1
        ).to(device),
        reference_pixel_values=torch.randn(
            batch, 3, size, size, generator=generator
        ).to(device),
        text=['a close-up portrait of a tabby cat with green eyes'] * batch,
        time_ids=torch.tensor([sizes] * batch, dtype=torch.float32).to(device),
    )


@torch.no_grad()
def cached_inputs(model: IPAdapter, inputs: dict) -> dict[str, Any]:
    """What an embedding cache would hold for this batch."""
    mean, std = model.family.latent_distribution(inputs['pixel_values'])
    features = model.image_encoder(
        inputs['reference_pixel_values'], model.image_projection.image_features
    )
    return dict(
        latent_mean=mean,
        latent_std=std,
        image_features=features,
        time_ids=inputs['time_ids'],
        **model.family.encode_prompt(inputs['text']),
    )


def timed_steps(
    model: IPAdapter,
    optimizer: torch.optim.Optimizer,
    inputs: dict,
    steps: int,
    warmup: int,
    dtype: torch.dtype,
    device: str,
) -> tuple[float, float, float]:
    """``(seconds per step, FLOPs per step, peak memory GB)``; the median
    step, so that a busy machine's outliers do not decide the figure."""
    autocast = (
        torch.autocast(device.split(':')[0], dtype=dtype)
        if dtype != torch.float32
        else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            loss = model(inputs)['loss']
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    memory = PeakMemory(device)
    times = []
    with memory.measure():
        for _ in range(steps):
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times), counter.get_total_flops(), memory.peak_gb


@contextlib.contextmanager
def _building(device: str | None, dtype: torch.dtype | None) -> Iterator[None]:
    """Create tensors on ``device`` and in ``dtype`` (default: as torch does)."""
    previous = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        with torch.device(device) if device else contextlib.nullcontext():
            yield
    finally:
        torch.set_default_dtype(previous)


def build_benchmark_model(
    architecture: str,
    dtype: str = 'fp32',
    device: str = 'cpu',
    gradient_checkpointing: bool = False,
    on_device: bool = False,
    build_dtype: str | None = None,
) -> IPAdapter:
    """The architecture with its paired encoder, random weights, frozen in
    ``dtype``, in training mode on ``device``.

    Args:
        on_device: Initialise the weights on ``device`` (seconds on a GPU
            for what takes minutes on a CPU); falls back to the CPU if that
            fails.
        build_dtype: Create the frozen weights in this precision (``'bf16'``:
            half the memory while building a 12B model); the adapter is then
            cast to fp32.
    """
    spec = architecture_spec(architecture)

    def build(where: str | None) -> IPAdapter:
        torch.manual_seed(0)
        cast = to_dtype(build_dtype) if build_dtype else None
        with _building(where, cast):
            model = IPAdapter(
                f'random:{architecture}',
                f'random:{spec["paired_encoder"]}',
                family=dict(type=spec['family'], **spec.get('family_settings', {})),
                image_projection=spec.get('projection'),
                gradient_checkpointing=gradient_checkpointing,
                frozen_dtype=None if dtype == 'fp32' else dtype,
            )
        for param in model.parameters():
            if param.requires_grad:
                param.data = param.data.float()
        return model

    model = None
    if on_device:
        try:
            model = build(device)
        except (RuntimeError, NotImplementedError, TypeError) as err:
            print(f'building on {device} failed ({err}); building on the CPU')
    if model is None:
        model = build(None)
    return model.to(device).train()


def run_benchmark(
    architecture: str = 'tiny_sd15',
    batch: int = 1,
    resolution: int | None = None,
    dtype: str = 'fp32',
    steps: int = 5,
    warmup: int = 1,
    infer_steps: int = 30,
    compile_denoiser: bool = False,
    device: str | None = None,
    gradient_checkpointing: bool = False,
    on_device: bool = False,
    channels_last: bool = True,
    allocator: str = 'default',
) -> dict[str, Any]:
    """One row of the results table (see the module docstring); our path
    channels-last unless ``channels_last=False``, retaining freed host
    memory where ``allocator='retain'``."""
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    spec = architecture_spec(architecture)
    resolution = resolution or spec['resolution']
    cast = to_dtype(dtype)
    model = build_benchmark_model(
        architecture, dtype, device, gradient_checkpointing, on_device
    )
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4
    )
    inputs = make_inputs(model, batch, resolution, device)

    reference = timed_steps(model, optimizer, inputs, steps, warmup, cast, device)

    autocast = (
        torch.autocast(device.split(':')[0], dtype=cast)
        if cast != torch.float32
        else contextlib.nullcontext()
    )
    sync(device)
    start = time.perf_counter()
    with autocast:
        cached = cached_inputs(model, inputs)
    sync(device)
    cache_seconds = (time.perf_counter() - start) / batch
    if channels_last:
        model.channels_last = True
        model.family.denoiser.to(memory_format=torch.channels_last)
    if compile_denoiser:
        model.family.denoiser.compile()
    retained = allocator == 'retain' and retain_freed_memory()
    ours = timed_steps(model, optimizer, cached, steps, warmup, cast, device)
    same_allocator = reference
    if retained:
        model.channels_last = False
        model.family.denoiser.to(memory_format=torch.contiguous_format)
        same_allocator = timed_steps(
            model, optimizer, inputs, steps, warmup, cast, device
        )

    latency = None
    if infer_steps:
        from PIL import Image

        reference_image = Image.new('RGB', (256, 256), (120, 80, 40))
        model.eval()
        with torch.no_grad(), live_pipeline(model) as pipe, autocast:
            pipe(
                reference_image, 'a cat', steps=2, height=resolution, width=resolution
            )  # warm-up
            sync(device)
            start = time.perf_counter()
            pipe(
                reference_image,
                'a cat',
                steps=infer_steps,
                height=resolution,
                width=resolution,
            )
            sync(device)
            latency = time.perf_counter() - start

    peak = measured_matmul_peak(device, cast)
    achieved = ours[1] / ours[0] / 1e12
    spec_peak = dense_bf16_peak_tflops(device_name(device))
    return dict(
        device=device_name(device),
        family=architecture,
        batch=batch,
        resolution=resolution,
        dtype=dtype,
        reference_imgs_per_s=batch / reference[0],
        ours_imgs_per_s=batch / ours[0],
        speedup=reference[0] / ours[0],
        speedup_same_allocator=same_allocator[0] / ours[0],
        reference_step_s=reference[0],
        reference_same_allocator_step_s=same_allocator[0],
        ours_step_s=ours[0],
        reference_peak_mem_gb=reference[2],
        ours_peak_mem_gb=ours[2],
        reference_tflops_per_step=reference[1] / 1e12,
        model_tflops_per_step=ours[1] / 1e12,
        achieved_tflops=achieved,
        device_matmul_peak_tflops=peak,
        fraction_of_matmul_peak=achieved / peak,
        spec_bf16_peak_tflops=spec_peak,
        mfu=achieved / spec_peak if spec_peak else None,
        gradient_checkpointing=gradient_checkpointing,
        cache_build_s_per_image=cache_seconds,
        compile_denoiser=compile_denoiser,
        channels_last=channels_last,
        allocator='retain' if retained else 'default',
        inference_steps=infer_steps or None,
        inference_latency_s=latency,
        torch=torch.__version__,
    )


def format_rows(rows: list[dict]) -> str:
    """The results as a Markdown table."""
    lines = [
        '| device | family | dtype | batch | res | reference img/s | '
        'ours img/s | speedup | same allocator | ref. peak GB | ours peak GB | '
        'TFLOP/step | achieved TFLOP/s | % of matmul peak | MFU | '
        f'{"infer s":>7} |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        latency = (
            '-'
            if r['inference_latency_s'] is None
            else f'{r["inference_latency_s"]:.2f}'
        )
        mfu = '-' if r.get('mfu') is None else f'{100 * r["mfu"]:.0f} %'
        same = r.get('speedup_same_allocator', r['speedup'])
        lines.append(
            f'| {r["device"]} | {r["family"]} | {r["dtype"]} | {r["batch"]} | '
            f'{r["resolution"]} | {r["reference_imgs_per_s"]:.3g} | '
            f'{r["ours_imgs_per_s"]:.3g} | {r["speedup"]:.2f}× | {same:.2f}× | '
            f'{r["reference_peak_mem_gb"]:.2f} | {r["ours_peak_mem_gb"]:.2f} | '
            f'{r["model_tflops_per_step"]:.3g} | {r["achieved_tflops"]:.3g} | '
            f'{100 * r["fraction_of_matmul_peak"]:.0f} % | {mfu} | {latency} |'
        )
    return '\n'.join(lines)
