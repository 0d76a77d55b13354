"""The GPU script's memory rows (benchmarks/gpu/steps.py runs them).

Every row trains from cached inputs (what an embedding cache holds) and
records the first step (a compile's cost lands there), the median step and
the peak memory: SD1.5 with the frozen denoiser quantized (int8; on CUDA
fp8 and NF4 too), with the encoders kept and freed, eager and regionally
compiled; then FLUX.1 at 1024 px, batch 1, NF4 denoiser, gradient
checkpointing, encoders freed: the 24 GB card.
"""

import time
from typing import Any


def train_row(
    ctx: Any,
    architecture: str,
    quantize: str | None = None,
    release: bool = True,
    compile_mode: bool | str = False,
    checkpointing: bool = False,
    steps: int = 3,
) -> dict:
    """One cached-training row (see the module docstring)."""
    import torch

    from benchmarks.benchmark import (
        build_benchmark_model,
        cached_inputs,
        make_inputs,
        sync,
        timed_steps,
    )
    from benchmarks.measurements import free_memory, is_out_of_memory
    from diffengine_ipa.dtypes import to_dtype
    from diffengine_ipa.errors import UserError
    from diffengine_ipa.models.compilation import compile_denoiser
    from diffengine_ipa.models.quantization import quantize_parts
    from diffengine_ipa.models.random_models.architectures import architecture_spec
    from diffengine_ipa.models.resident_encoders import release_encoders

    row = dict(
        family=architecture,
        quantize=quantize,
        encoders=('freed' if release else 'kept'),
        compile=compile_mode,
        gradient_checkpointing=checkpointing,
        dtype=ctx.dtype,
        resolution=architecture_spec(architecture)['resolution'],
        batch=1,
    )
    cast = to_dtype(ctx.dtype)
    try:
        model = build_benchmark_model(
            architecture,
            ctx.dtype,
            ctx.device,
            checkpointing,
            ctx.on_device,
            build_dtype='bf16' if ctx.on_device else None,
        )
        with torch.autocast(ctx.device, dtype=cast, enabled=cast != torch.float32):
            inputs = cached_inputs(
                model, make_inputs(model, 1, row['resolution'], ctx.device)
            )
            model.empty_prompt_encodings()
        if quantize:
            model.quantize_modes = dict(denoiser=quantize)
            quantize_parts(model, model.quantize_modes)
        if release:
            release_encoders(model)
        compile_denoiser(model.family.denoiser, compile_mode)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=1e-4
        )
        sync(ctx.device)
        start = time.perf_counter()
        timed_steps(model, optimizer, inputs, 1, 0, cast, ctx.device)
        row['first_steps_s'] = time.perf_counter() - start  # 2 steps + compile
        step_s, flops, peak = timed_steps(
            model, optimizer, inputs, steps, 0, cast, ctx.device
        )
        row.update(
            step_s=step_s, tflops_per_step=flops / 1e12, peak_mem_gb=peak, oom=False
        )
    except UserError as err:  # e.g. NF4 without bitsandbytes
        row.update(oom=False, error=str(err))
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err):
            raise
        row['oom'] = True
    finally:
        model = inputs = optimizer = None
        free_memory()
    return row


def memory_modes(ctx: Any) -> None:
    """The rows of the module docstring, saved as each finishes."""
    cuda = ctx.device == 'cuda'
    steps = 3 if cuda else 1
    sd15, rows = ctx.arch('sd15'), []
    runs = [dict(), dict(release=False), dict(quantize='int8')]
    if cuda:
        runs += [
            dict(quantize='fp8'),
            dict(quantize='nf4'),
            dict(compile_mode='regional'),
            dict(compile_mode='whole'),
        ]
    for run in runs:
        if ctx.left() < 30:
            break
        rows.append(train_row(ctx, sd15, steps=steps, **run))
        ctx.save('rows', rows)
    if ctx.left() > 60:
        rows.append(
            train_row(
                ctx,
                ctx.arch('flux1_dev'),
                quantize='nf4' if cuda else 'int8',
                checkpointing=True,
                steps=2 if cuda else 1,
            )
        )
        ctx.save('rows', rows)
