"""Measurements beyond one benchmark row, for benchmarks/gpu/run.sh: the
largest batch that fits, a training step's peak memory with and without
gradient checkpointing, and generation latency of the kit's inference path
against a plain diffusers call (and compiled).

Every function builds the registered architecture with random weights (see
:mod:`.benchmark`), runs on any device, and returns plain dicts for JSON.
"""

import contextlib
import gc
import os.path as osp
import tempfile
import time
from typing import Any

import torch

from benchmarks.benchmark import (
    build_benchmark_model,
    cached_inputs,
    make_inputs,
    sync,
    timed_steps,
)
from diffengine_ipa.dtypes import to_dtype
from diffengine_ipa.models.random_models.architectures import architecture_spec

__all__ = [
    'largest_batch',
    'train_step_memory',
    'inference_latency',
    'is_out_of_memory',
    'free_memory',
]


def is_out_of_memory(err: BaseException) -> bool:
    """A CUDA (or host) allocation failure."""
    return isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)) or (
        isinstance(err, RuntimeError) and 'out of memory' in str(err).lower()
    )


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _autocast(device: str, dtype: str):
    cast = to_dtype(dtype)
    if cast == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.split(':')[0], dtype=cast)


def _tiled(batch: dict, times: int) -> dict:
    """Each tensor of a batch repeated ``times`` along the batch dimension."""
    return {
        k: torch.cat([v] * times) if isinstance(v, torch.Tensor) else v * times
        for k, v in batch.items()
    }


def largest_batch(
    architecture: str,
    dtype: str = 'bf16',
    device: str = 'cuda',
    batches: tuple[int, ...] = (16, 32, 64, 128, 256),
    steps: int = 3,
    deadline: float | None = None,
    on_device: bool = False,
) -> list[dict[str, Any]]:
    """The kit's fast path (cached inputs, channels-last UNet) at growing
    batch sizes until one does not fit (or ``deadline``, a ``time.time()``,
    passes): one dict per batch tried, the last with ``oom=True`` if it ran
    out of memory."""
    model = build_benchmark_model(architecture, dtype, device, on_device=on_device)
    model.channels_last = True
    model.family.denoiser.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4
    )
    resolution = architecture_spec(architecture)['resolution']
    with _autocast(device, dtype):
        unit = cached_inputs(model, make_inputs(model, 1, resolution, device))
    rows = []
    for batch in batches:
        if deadline is not None and time.time() > deadline:
            break
        try:
            step_s, flops, peak = timed_steps(
                model, optimizer, _tiled(unit, batch), steps, 1, to_dtype(dtype), device
            )
            rows.append(
                dict(
                    batch=batch,
                    imgs_per_s=batch / step_s,
                    step_s=step_s,
                    peak_mem_gb=peak,
                    tflops_per_step=flops / 1e12,
                    achieved_tflops=flops / step_s / 1e12,
                )
            )
        except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
            if not is_out_of_memory(err):
                raise
            rows.append(dict(batch=batch, oom=True))
            break
        finally:
            optimizer.zero_grad(set_to_none=True)
            free_memory()
    return rows


def train_step_memory(
    architecture: str,
    dtype: str = 'bf16',
    device: str = 'cuda',
    batch: int = 1,
    steps: int = 2,
    on_device: bool = False,
    checkpointing: tuple[bool, ...] = (False, True),
    build_dtype: str | None = None,
) -> list[dict[str, Any]]:
    """Time and peak memory of a training step, without and with gradient
    checkpointing, for the full step (encoders run, as the official scripts
    do) and the cached one: one dict per (checkpointing, inputs).
    ``build_dtype``: see :func:`build_benchmark_model`."""
    model = build_benchmark_model(
        architecture, dtype, device, on_device=on_device, build_dtype=build_dtype
    )
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4
    )
    resolution = architecture_spec(architecture)['resolution']
    inputs = make_inputs(model, batch, resolution, device)
    with _autocast(device, dtype):
        cached = cached_inputs(model, inputs)
    denoiser, rows = model.family.denoiser, []
    for checkpoint in checkpointing:
        if checkpoint:
            denoiser.enable_gradient_checkpointing()
        else:
            denoiser.disable_gradient_checkpointing()
        for name, data in (('full', inputs), ('cached', cached)):
            row = dict(
                gradient_checkpointing=checkpoint,
                inputs=name,
                batch=batch,
                resolution=resolution,
            )
            try:
                step_s, _, peak = timed_steps(
                    model, optimizer, data, steps, 1, to_dtype(dtype), device
                )
                row.update(step_s=step_s, peak_mem_gb=peak)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
                if not is_out_of_memory(err):
                    raise
                row['oom'] = True
            optimizer.zero_grad(set_to_none=True)
            free_memory()
            rows.append(row)
    return rows


def _adapter_file(architecture: str, folder: str, device: str, on_device: bool) -> str:
    """An adapter for the architecture (random weights) as a converted file."""
    from safetensors.torch import save_file

    from diffengine_ipa.official_format import official_state_dict

    model = build_benchmark_model(
        architecture, 'fp32', device, on_device=on_device, build_dtype='bf16'
    )
    path = osp.join(folder, 'ip_adapter.safetensors')
    save_file(official_state_dict(model), path)
    del model
    free_memory()
    return path


def _timed_call(call: Any, device: str) -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    result = call()
    sync(device)
    return time.perf_counter() - start, result


def inference_latency(
    architecture: str = 'sd15',
    dtype: str = 'bf16',
    device: str = 'cuda',
    steps: int = 30,
    compile_denoiser: bool = False,
    on_device: bool = False,
) -> dict[str, Any]:
    """Seconds for one ``steps``-step generation at the training resolution
    with guidance: the kit's inference path (``apis.build_pipeline``, what
    tools/infer.py runs) and a plain diffusers call of the same pipeline
    (``ip_adapter_image=``, its own image encoding), same weights, dtype and
    attention kernels; then both with the denoiser compiled."""
    import numpy as np
    from PIL import Image

    from diffengine_ipa.apis import build_pipeline

    spec = architecture_spec(architecture)
    size = spec['resolution']
    reference = Image.new('RGB', (512, 512), (120, 80, 40))
    model_cfg = dict(
        pretrained_model_name_or_path=f'random:{architecture}',
        family=dict(type=spec['family'], **spec.get('family_settings', {})),
        image_encoder=f'random:{spec["paired_encoder"]}',
    )
    with tempfile.TemporaryDirectory() as folder:
        adapter = _adapter_file(architecture, folder, device, on_device)
        building = torch.device(device) if on_device else contextlib.nullcontext()
        with building:
            kit = build_pipeline(model_cfg, adapter, device, to_dtype(dtype))
    pipe = kit.pipe

    def ours(count: int) -> Any:
        return kit(reference, 'a cat', steps=count, seed=0, height=size, width=size)[0]

    def plain(count: int) -> Any:
        generator = torch.Generator(pipe.device).manual_seed(0)
        return pipe(
            'a cat',
            ip_adapter_image=reference,
            height=size,
            width=size,
            num_inference_steps=count,
            guidance_scale=7.5,
            generator=generator,
        ).images[0]

    row = dict(
        family=architecture,
        resolution=size,
        dtype=dtype,
        steps=steps,
        attention='sdpa (PyTorch default kernels)',
    )
    with torch.no_grad():
        ours(2), plain(2)  # warm-up
        row['ours_s'], ours_image = _timed_call(lambda: ours(steps), device)
        row['diffusers_s'], their_image = _timed_call(lambda: plain(steps), device)
        row['ours_over_diffusers'] = row['ours_s'] / row['diffusers_s']
        difference = np.abs(
            np.asarray(ours_image, dtype=np.int16)
            - np.asarray(their_image, dtype=np.int16)
        )
        row['max_pixel_difference'] = int(difference.max())
        if compile_denoiser:
            getattr(pipe, kit.family.denoiser_name).compile()
            row['compile_s'], _ = _timed_call(lambda: ours(2), device)
            row['ours_compiled_s'], _ = _timed_call(lambda: ours(steps), device)
            row['diffusers_compiled_s'], _ = _timed_call(lambda: plain(steps), device)
    kit = pipe = None  # the weights go before the next measurement
    free_memory()
    return row
