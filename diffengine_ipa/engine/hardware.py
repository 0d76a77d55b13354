"""Settings that follow the hardware: precision, frozen-weight dtype, memory
format, attention kernels, data workers, threads, compilation and the host
allocator.

One module owns every such decision. :func:`detect` reads what the machine
has (:class:`Capabilities`); :func:`decide` turns that into one
:class:`Decision` per setting, each with the reason, as a pure function of
the capabilities (so every rule is tested on faked machines);
:func:`apply_to_config` writes the decisions into a training config and
:func:`apply_to_process` sets the process-wide ones (threads, SDPA kernels,
the host allocator).

A config asks for a decision with ``'auto'`` in its ``hardware`` dict and
overrides one with a value; a setting the dict does not name stays as the
config writes it::

    hardware = dict(amp='auto', frozen_dtype='auto', channels_last='auto',
                    attention='auto', num_workers='auto', threads='auto',
                    compile='auto', allocator='auto')
"""

import dataclasses
import os
from typing import Any

from ..dtypes import AMP_MODES
from ..errors import UserError
from .host_memory import is_glibc, retain_freed_memory

__all__ = [
    'Capabilities',
    'Decision',
    'SETTINGS',
    'AMP_MODES',
    'ATTENTION_BACKENDS',
    'ALLOCATOR_MODES',
    'NATIVE_BF16_FLAGS',
    'read_cpuinfo',
    'detect',
    'decide',
    'requested_settings',
    'denoiser_is_unet',
    'apply_to_config',
    'apply_to_process',
    'report',
    'configure',
]

SETTINGS = (
    'amp',
    'frozen_dtype',
    'channels_last',
    'attention',
    'num_workers',
    'threads',
    'compile',
    'allocator',
)
# 'retain': freed host memory is kept for the next step (engine/host_memory.py).
ALLOCATOR_MODES = ('default', 'retain')
COMPILE_VALUES = (False, True, 'whole', 'regional')
# 'default': PyTorch's own order (flash, memory-efficient, cuDNN, then math
# where no fused kernel takes the inputs); the others allow one kernel only.
ATTENTION_BACKENDS = ('default', 'flash', 'efficient', 'cudnn', 'math')
NATIVE_BF16_FLAGS = frozenset({'avx512_bf16', 'amx_bf16'})
# The optimizer wrappers whose precision this module may change (a DeepSpeed
# or other strategy's wrapper decides its own).
PRECISION_WRAPPERS = {
    'bf16': 'AutocastOptimWrapper',
    'fp16': 'AmpOptimWrapper',
    'fp32': 'OptimWrapper',
}


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the machine offers this process.

    Args:
        device: ``'cuda'``, ``'mps'`` or ``'cpu'``: where training runs.
        name: The accelerator's or CPU's name, for the report.
        cuda_capability: ``(major, minor)`` of the CUDA device.
        cpu_flags: The CPU's feature flags (``/proc/cpuinfo`` names).
        cpu_cores: Cores this process may run on.
        processes_per_node: Training processes sharing this machine.
        glibc: Whether the C library is glibc (its allocator can be tuned).
    """

    device: str
    name: str = ''
    cuda_capability: tuple[int, int] | None = None
    cpu_flags: frozenset[str] = frozenset()
    cpu_cores: int = 1
    processes_per_node: int = 1
    glibc: bool = False

    @property
    def native_bf16_cpu(self) -> bool:
        return bool(self.cpu_flags & NATIVE_BF16_FLAGS)

    @property
    def cores_per_process(self) -> int:
        return max(1, self.cpu_cores // max(1, self.processes_per_node))


@dataclasses.dataclass(frozen=True)
class Decision:
    """One setting: its value, why, and who chose it (``'auto'`` or the
    config / command line)."""

    value: Any
    reason: str
    source: str = 'auto'


def read_cpuinfo(cpuinfo: str = '/proc/cpuinfo') -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags from ``/proc/cpuinfo`` (Linux);
    elsewhere the platform's name and what PyTorch reports of the bf16
    instructions."""
    name, flags = '', None
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'model name' and not name:
                    name = value.strip()
                elif key.strip() == 'flags' and flags is None:
                    flags = frozenset(value.split())
    except OSError:
        pass
    if flags is None:
        import torch

        checks = dict(
            avx512_bf16='_is_avx512_bf16_supported', amx_bf16='_is_amx_tile_supported'
        )
        flags = frozenset(
            flag
            for flag, check in checks.items()
            if getattr(torch.cpu, check, lambda: False)()
        )
    if not name:
        import platform

        name = platform.processor() or platform.machine()
    return name, flags


def detect(device: str | None = None) -> Capabilities:
    """This machine's capabilities; ``device`` forces the training device
    (default: CUDA, else MPS, else the CPU)."""
    import torch

    if device is None:
        device = (
            'cuda'
            if torch.cuda.is_available()
            else 'mps'
            if torch.backends.mps.is_available()
            else 'cpu'
        )
    device = device.split(':')[0]
    cores = (
        len(os.sched_getaffinity(0))
        if hasattr(os, 'sched_getaffinity')
        else os.cpu_count() or 1
    )
    name, flags = read_cpuinfo()
    name = f'{name}, {torch.backends.cpu.get_cpu_capability()}'
    capability = None
    if device == 'cuda':
        name = torch.cuda.get_device_name()
        capability = tuple(torch.cuda.get_device_capability())
    elif device == 'mps':
        name = 'Apple MPS'
    return Capabilities(
        device=device,
        name=name,
        cuda_capability=capability,
        cpu_flags=flags,
        cpu_cores=cores,
        processes_per_node=int(os.environ.get('LOCAL_WORLD_SIZE', 1)),
        glibc=is_glibc(),
    )


def _amp(caps: Capabilities) -> Decision:
    if caps.device == 'cuda':
        major, minor = caps.cuda_capability or (0, 0)
        if major >= 8:
            return Decision(
                'bf16',
                f'{caps.name} (sm_{major}{minor}) has '
                'bf16 tensor cores: bf16 autocast, no loss scaling',
            )
        return Decision(
            'fp16',
            f'{caps.name} (sm_{major}{minor}) has no bf16 '
            'tensor cores: fp16 autocast with dynamic loss '
            "scaling (MMEngine's AmpOptimWrapper)",
        )
    if caps.device == 'mps':
        return Decision(
            'fp32',
            'Apple MPS: fp16 needs loss scaling, which '
            'MMEngine has for CUDA only, and bf16 autocast covers '
            'few MPS kernels',
        )
    if caps.native_bf16_cpu:
        flags = '/'.join(sorted(caps.cpu_flags & NATIVE_BF16_FLAGS))
        return Decision('bf16', f'the CPU has native bf16 ({flags}): bf16 autocast')
    return Decision(
        'fp32',
        'the CPU has no native bf16 (no avx512_bf16 or '
        'amx_bf16): bf16 would be emulated, ~5x slower than fp32',
    )


def _frozen_dtype(amp: str, unet: bool) -> Decision:
    if amp == 'fp32':
        return Decision(None, 'fp32 training: the frozen weights stay fp32')
    if amp == 'fp16' and not unet:
        return Decision(
            None, 'fp16 overflows in the T5 text encoder: the frozen weights stay fp32'
        )
    return Decision(
        amp,
        f'{amp} autocast: frozen weights stored in {amp} '
        'halve their memory and casts; the adapter stays fp32',
    )


def _channels_last(caps: Capabilities, unet: bool) -> Decision:
    if not unet:
        return Decision(False, 'a transformer denoiser: no convolutions to lay out')
    if caps.device == 'mps':
        return Decision(
            False, 'MPS runs channels-last convolutions through extra copies'
        )
    kernels = 'tensor-core' if caps.device == 'cuda' else 'oneDNN'
    return Decision(
        True, f"the UNet's convolutions: {kernels} kernels prefer channels-last (NHWC)"
    )


def _attention(caps: Capabilities) -> Decision:
    where = (
        'flash, memory-efficient or cuDNN kernels'
        if caps.device == 'cuda'
        else 'the fused CPU flash kernel'
        if caps.device == 'cpu'
        else "the device's SDPA kernel"
    )
    return Decision(
        'default',
        f"PyTorch SDPA's own order: {where}, math only where none takes the inputs",
    )


def _num_workers(caps: Capabilities) -> Decision:
    cores = caps.cores_per_process
    if caps.device == 'cpu':
        workers = min(2, cores // 4)
        return Decision(
            workers,
            f'{cores} cores per process, which the CPU '
            'step uses: '
            + (
                'loading in the main process'
                if not workers
                else f'{workers} loader processes'
            ),
        )
    workers = min(8, max(1, cores - 1))
    return Decision(
        workers,
        f'{cores} cores per process: {workers} loader '
        'processes keep the GPU fed, one core for the main process',
    )


def _threads(caps: Capabilities) -> Decision:
    if caps.device != 'cpu':
        return Decision(
            None, "the accelerator does the work: PyTorch's default threads"
        )
    cores = caps.cores_per_process
    return Decision(
        cores,
        f'{cores} cores per process '
        f'({caps.cpu_cores} usable, {caps.processes_per_node} '
        'processes): one compute thread each',
    )


def _compile(caps: Capabilities) -> Decision:
    if caps.device == 'cpu':
        return Decision(
            False,
            'compiling does not pay on a CPU: measured '
            '0.46x (29.7 against ~7 s per full-size SD1.5 step)',
        )
    if caps.device == 'mps':
        return Decision(False, 'torch.compile covers few MPS kernels')
    return Decision(
        False,
        'its first steps cost minutes and the gain is '
        "unmeasured here: set hardware.compile='regional' for long "
        'runs (benchmarks/gpu/run.sh measures it)',
    )


def _allocator(caps: Capabilities) -> Decision:
    if caps.device != 'cpu':
        return Decision(
            'default',
            "the step's tensors live in the accelerator's caching allocator",
        )
    if not caps.glibc:
        return Decision('default', 'the C library is not glibc: its own allocator')
    return Decision(
        'retain',
        'freed host memory is kept for the next step: glibc gives every block '
        'over 32 MiB back (oneDNN reorders of large convolution weights), and '
        'faulting it in again cost a quarter of a CPU step (measured: full-size '
        'SD1.5 at 256 px, 5.4 against 4.0-4.7 s per step)',
    )


def _given(name: str, value: Any, caps: Capabilities) -> Decision:
    """A value the config or command line sets, checked against the device."""
    if name == 'amp':
        if value not in AMP_MODES[1:]:
            raise UserError(
                f'hardware.amp={value!r}: use one of {", ".join(AMP_MODES)}'
            )
        if value == 'fp16' and caps.device != 'cuda':
            raise UserError(
                f'hardware.amp=fp16 on {caps.device}: fp16 needs loss scaling, '
                "which MMEngine's AmpOptimWrapper has on CUDA only; use bf16 "
                'or fp32'
            )
    if name == 'compile' and value not in COMPILE_VALUES:
        raise UserError(
            f"hardware.compile={value!r}: use auto, False, 'whole' or 'regional'"
        )
    if name == 'allocator':
        if value not in ALLOCATOR_MODES:
            raise UserError(
                f'hardware.allocator={value!r}: use auto, {", ".join(ALLOCATOR_MODES)}'
            )
        if value == 'retain' and not caps.glibc:
            raise UserError(
                "hardware.allocator='retain' tunes glibc's malloc, and this "
                "C library is not glibc: use 'default'"
            )
    if name == 'attention' and value not in ATTENTION_BACKENDS:
        raise UserError(
            f'hardware.attention={value!r}: use auto or one of '
            f'{", ".join(ATTENTION_BACKENDS)}'
        )
    return Decision(value, 'set in the config or on the command line', 'given')


def decide(
    caps: Capabilities, requested: dict[str, Any], unet: bool = True
) -> dict[str, Decision]:
    """One decision per requested setting (``'auto'`` or a value).

    Args:
        caps: The machine (see :func:`detect`).
        requested: ``{setting: 'auto' | value}`` for some of
            :data:`SETTINGS`; the others are not decided.
        unet: Whether the model family's denoiser is a UNet (SD1.5, SDXL).

    Raises:
        UserError: an unknown setting or value, or a combination that cannot
            train (fp16 without CUDA, half-precision frozen weights in fp32).
    """
    unknown = set(requested) - set(SETTINGS)
    if unknown:
        raise UserError(
            f'hardware.{sorted(unknown)[0]}: unknown setting; the '
            f'settings are {", ".join(SETTINGS)}'
        )
    auto = dict(
        amp=lambda: _amp(caps),
        frozen_dtype=lambda: _frozen_dtype(decisions['amp'].value, unet),
        channels_last=lambda: _channels_last(caps, unet),
        attention=lambda: _attention(caps),
        num_workers=lambda: _num_workers(caps),
        threads=lambda: _threads(caps),
        compile=lambda: _compile(caps),
        allocator=lambda: _allocator(caps),
    )
    decisions: dict[str, Decision] = {}
    if requested.get('frozen_dtype') == 'auto' and 'amp' not in requested:
        raise UserError(
            "hardware.frozen_dtype='auto' follows hardware.amp: set that too"
        )
    for name in SETTINGS:
        if name not in requested:
            continue
        value = requested[name]
        decisions[name] = auto[name]() if value == 'auto' else _given(name, value, caps)
    frozen = decisions.get('frozen_dtype')
    if (
        frozen
        and frozen.value not in (None, 'fp32', 'float32')
        and (decisions['amp'].value == 'fp32')
    ):
        raise UserError(
            f'hardware.frozen_dtype={frozen.value!r} needs mixed '
            'precision, but hardware.amp is fp32 here'
        )
    return decisions


def requested_settings(cfg: Any, amp: str | None, device: str) -> dict:
    """The config's ``hardware`` dict with the command line's ``--amp``.

    ``--amp MODE`` (auto, bf16, fp16, fp32) sets ``amp`` and, unless the
    config sets it, lets the frozen weights follow (``frozen_dtype='auto'``).
    A bare ``--amp`` is MMEngine's meaning, the optimizer wrapper only: fp16
    with loss scaling on CUDA, bf16 autocast elsewhere.
    """
    requested = dict(cfg.get('hardware') or {})
    if amp == 'mixed':
        requested['amp'] = 'fp16' if device == 'cuda' else 'bf16'
    elif amp is not None:
        requested['amp'] = amp
        requested.setdefault('frozen_dtype', 'auto')
    return requested


def denoiser_is_unet(model_cfg: dict) -> bool:
    """Whether the config's model family denoises with a UNet."""
    from ..models.families import family_class

    return getattr(family_class(model_cfg), 'denoiser_name', 'unet') == 'unet'


def _set_precision(optim_wrapper: dict, amp: str) -> None:
    """The wrapper for ``amp``, keeping the optimizer and the rest."""
    if optim_wrapper.get('type') not in PRECISION_WRAPPERS.values():
        return
    optim_wrapper['type'] = PRECISION_WRAPPERS[amp]
    optim_wrapper.pop('loss_scale', None)
    optim_wrapper.pop('dtype', None)
    if amp == 'bf16':
        optim_wrapper['dtype'] = 'bfloat16'
    elif amp == 'fp16':
        optim_wrapper.update(dtype='float16', loss_scale='dynamic')


def apply_to_config(
    cfg: Any, decisions: dict[str, Decision], caps: Capabilities
) -> None:
    """Write the decisions into a training config (model, optimizer
    wrapper, train dataloader; pinned host memory where CUDA copies it)."""
    if 'amp' in decisions:
        _set_precision(cfg.optim_wrapper, decisions['amp'].value)
    for name in ('frozen_dtype', 'channels_last'):
        if name in decisions:
            cfg.model[name] = decisions[name].value
    if 'compile' in decisions:
        cfg.model['compile_denoiser'] = decisions['compile'].value
    if 'num_workers' in decisions:
        workers = decisions['num_workers'].value
        cfg.train_dataloader.update(
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=caps.device == 'cuda',
        )


def apply_to_process(decisions: dict[str, Decision]) -> None:
    """Set the process-wide decisions: compute threads, SDPA kernels, the
    host allocator (kept for the rest of the process)."""
    import torch

    threads = decisions.get('threads')
    if threads is not None and threads.value:
        torch.set_num_threads(int(threads.value))
    attention = decisions.get('attention')
    if attention is not None and attention.value != 'default':
        only = attention.value
        torch.backends.cuda.enable_flash_sdp(only == 'flash')
        torch.backends.cuda.enable_mem_efficient_sdp(only == 'efficient')
        torch.backends.cuda.enable_cudnn_sdp(only == 'cudnn')
        torch.backends.cuda.enable_math_sdp(only == 'math')
    allocator = decisions.get('allocator')
    if allocator is not None and allocator.value == 'retain':
        retain_freed_memory()


def report(caps: Capabilities, decisions: dict[str, Decision]) -> list[str]:
    """What was chosen and why, one line each (the log's first lines)."""
    bf16 = 'native bf16' if caps.native_bf16_cpu else 'no native bf16'
    lines = [
        f'hardware: {caps.device} ({caps.name}); CPU: {caps.cpu_cores} '
        f'cores, {bf16}; {caps.processes_per_node} process(es) per node'
    ]
    for name, decision in decisions.items():
        how = 'auto' if decision.source == 'auto' else 'given'
        lines.append(f'hardware.{name} = {decision.value!r} ({how}: {decision.reason})')
    if not decisions:
        lines.append(
            'hardware: nothing set to auto; the config decides '
            "(e.g. --amp auto, or hardware=dict(amp='auto', ...))"
        )
    return lines


def configure(cfg: Any, amp: str | None = None, device: str | None = None) -> list[str]:
    """Detect, decide and apply (config and process) for ``cfg`` with the
    command line's ``--amp``; returns the report. The train script and the
    embedding-cache tool call this, so both build the same frozen model."""
    caps = detect(device)
    decisions = decide(
        caps,
        requested_settings(cfg, amp, caps.device),
        unet=denoiser_is_unet(cfg.model),
    )
    apply_to_config(cfg, decisions, caps)
    apply_to_process(decisions)
    check_precision_options(cfg)
    return report(caps, decisions)


def check_precision_options(cfg: Any) -> None:
    """MMEngine's plain ``OptimWrapper`` takes no ``dtype`` (a raw
    ``TypeError`` when the runner builds it): one line naming the flag."""
    wrapper = cfg.get('optim_wrapper') or {}
    if wrapper.get('type') == 'OptimWrapper' and 'dtype' in wrapper:
        raise UserError(
            f'optim_wrapper.dtype={wrapper["dtype"]!r} needs mixed precision: '
            'train with --amp bf16 (or --amp fp16 on CUDA) instead of setting '
            'the dtype'
        )
