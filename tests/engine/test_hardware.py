"""Every hardware decision on faked machines (no GPU needed), and how the
decisions land in a config."""

import pytest
from mmengine.config import Config

from diffengine_ipa.engine import hardware
from diffengine_ipa.engine.hardware import Capabilities, decide
from diffengine_ipa.engine.host_memory import is_glibc
from diffengine_ipa.errors import UserError

ALL_AUTO = {name: 'auto' for name in hardware.SETTINGS}
H100 = Capabilities('cuda', 'NVIDIA H100 80GB HBM3', (9, 0), cpu_cores=16)
V100 = Capabilities('cuda', 'Tesla V100-SXM2-16GB', (7, 0), cpu_cores=8)
MPS = Capabilities('mps', 'Apple MPS', cpu_cores=10)
EPYC = Capabilities(
    'cpu',
    'AMD EPYC, AVX2',
    cpu_flags=frozenset({'avx2', 'fma'}),
    cpu_cores=2,
    glibc=True,
)
MUSL_CPU = Capabilities('cpu', 'Alpine container, AVX2', cpu_cores=2)
SAPPHIRE_RAPIDS = Capabilities(
    'cpu',
    'Intel Xeon, AVX512',
    cpu_flags=frozenset({'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile'}),
    cpu_cores=32,
)
COOPER_LAKE = Capabilities(
    'cpu',
    'Intel Xeon, AVX512',
    cpu_flags=frozenset({'avx512f', 'avx512_bf16'}),
    cpu_cores=8,
)


def values(caps: Capabilities, unet: bool = True, **requested) -> dict:
    return {
        name: d.value for name, d in decide(caps, requested or ALL_AUTO, unet).items()
    }


def test_bf16_gpu_trains_in_bf16():
    chosen = values(H100)
    assert chosen == dict(
        amp='bf16',
        frozen_dtype='bf16',
        channels_last=True,
        attention='default',
        num_workers=8,
        threads=None,
        compile=False,
        allocator='default',
    )
    reason = decide(H100, dict(amp='auto'))['amp'].reason
    assert 'sm_90' in reason and 'bf16 tensor cores' in reason


def test_older_gpu_trains_fp16_with_loss_scaling():
    chosen = values(V100)
    assert chosen['amp'] == 'fp16' and chosen['frozen_dtype'] == 'fp16'
    assert 'loss scaling' in decide(V100, dict(amp='auto'))['amp'].reason
    assert chosen['num_workers'] == 7  # one core for the main process


def test_fp16_keeps_t5_families_frozen_in_fp32():
    assert values(V100, unet=False)['frozen_dtype'] is None


def test_mps_trains_in_fp32_without_channels_last():
    chosen = values(MPS)
    assert chosen['amp'] == 'fp32' and chosen['frozen_dtype'] is None
    assert chosen['channels_last'] is False


@pytest.mark.parametrize(
    'cpu', [SAPPHIRE_RAPIDS, COOPER_LAKE], ids=['amx', 'avx512_bf16']
)
def test_cpu_with_native_bf16_trains_in_bf16(cpu):
    assert values(cpu)['amp'] == 'bf16'
    assert values(cpu)['frozen_dtype'] == 'bf16'


def test_cpu_without_native_bf16_trains_in_fp32():
    decisions = decide(EPYC, ALL_AUTO)
    assert decisions['amp'].value == 'fp32'
    assert 'emulated' in decisions['amp'].reason
    assert decisions['frozen_dtype'].value is None


def test_cpu_workers_and_threads_follow_the_cores():
    assert values(EPYC)['num_workers'] == 0  # the step needs both cores
    assert values(EPYC)['threads'] == 2
    assert values(SAPPHIRE_RAPIDS)['num_workers'] == 2
    shared = Capabilities('cpu', 'x', cpu_cores=16, processes_per_node=4)
    assert values(shared)['threads'] == 4 and values(shared)['num_workers'] == 1


def test_channels_last_only_for_unets():
    assert values(H100)['channels_last'] is True
    assert values(EPYC)['channels_last'] is True
    assert values(H100, unet=False)['channels_last'] is False


def test_given_values_override_and_say_so():
    decisions = decide(
        H100, dict(amp='fp16', frozen_dtype='auto', num_workers=2, attention='flash')
    )
    assert {k: d.value for k, d in decisions.items()} == dict(
        amp='fp16', frozen_dtype='fp16', num_workers=2, attention='flash'
    )
    assert decisions['amp'].source == 'given'
    assert decisions['frozen_dtype'].source == 'auto'


def test_settings_not_requested_are_not_decided():
    assert decide(H100, {}) == {}
    assert set(decide(H100, dict(threads='auto'))) == {'threads'}


@pytest.mark.parametrize(
    'caps, requested, message',
    [
        (EPYC, dict(amp='fp16'), 'fp16 needs loss scaling'),
        (MPS, dict(amp='fp16'), 'CUDA only'),
        (EPYC, dict(amp='half'), 'use one of auto, bf16, fp16, fp32'),
        (EPYC, dict(amp='auto', frozen_dtype='bf16'), 'needs mixed precision'),
        (EPYC, dict(frozen_dtype='auto'), 'follows hardware.amp'),
        (H100, dict(attention='fast'), 'hardware.attention'),
        (H100, dict(amps='auto'), 'unknown setting'),
        (EPYC, dict(allocator='jemalloc'), 'use auto, default, retain'),
        (MUSL_CPU, dict(allocator='retain'), 'not glibc'),
    ],
)
def test_impossible_requests_are_one_line(caps, requested, message):
    with pytest.raises(UserError, match=message) as err:
        decide(caps, requested)
    assert '\n' not in str(err.value)


def test_cpuinfo_gives_name_and_flags(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(
        'processor\t: 0\nmodel name\t: Intel Xeon Platinum\n'
        'flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n\n'
        'processor\t: 1\nflags\t\t: fpu\n'
    )
    name, flags = hardware.read_cpuinfo(str(cpuinfo))
    assert name == 'Intel Xeon Platinum'
    assert {'avx512_bf16', 'amx_bf16'} <= flags and len(flags) == 5
    _, fallback = hardware.read_cpuinfo(str(tmp_path / 'missing'))
    assert fallback <= hardware.NATIVE_BF16_FLAGS  # what torch reports


def test_detect_forced_cpu():
    caps = hardware.detect('cpu')
    assert caps.device == 'cpu' and caps.cuda_capability is None
    assert caps.cpu_cores >= 1 and caps.processes_per_node >= 1


def config(**parts) -> Config:
    base = dict(
        model=dict(type='IPAdapter', family=dict(type='SD15')),
        optim_wrapper=dict(
            type='OptimWrapper', optimizer=dict(type='AdamW'), accumulative_counts=2
        ),
        train_dataloader=dict(num_workers=2, persistent_workers=True),
    )
    base.update(parts)
    return Config(base)


@pytest.mark.parametrize(
    'amp, wrapper, extra',
    [
        ('bf16', 'AutocastOptimWrapper', dict(dtype='bfloat16')),
        ('fp16', 'AmpOptimWrapper', dict(dtype='float16', loss_scale='dynamic')),
        ('fp32', 'OptimWrapper', {}),
    ],
)
def test_precision_sets_the_optimizer_wrapper(amp, wrapper, extra):
    cfg = config(
        optim_wrapper=dict(
            type='AutocastOptimWrapper', dtype='float16', optimizer=dict(type='AdamW')
        )
    )
    hardware.apply_to_config(cfg, decide(H100, dict(amp=amp)), H100)
    assert cfg.optim_wrapper == dict(
        type=wrapper, optimizer=dict(type='AdamW'), **extra
    )


def test_a_strategys_wrapper_is_left_alone():
    cfg = config(optim_wrapper=dict(type='DeepSpeedOptimWrapper'))
    hardware.apply_to_config(cfg, decide(H100, dict(amp='auto')), H100)
    assert cfg.optim_wrapper == dict(type='DeepSpeedOptimWrapper')


def test_decisions_land_in_model_and_dataloader():
    cfg = config()
    hardware.apply_to_config(cfg, decide(EPYC, ALL_AUTO), EPYC)
    assert cfg.model.frozen_dtype is None and cfg.model.channels_last is True
    assert cfg.train_dataloader == dict(
        num_workers=0, persistent_workers=False, pin_memory=False
    )
    assert cfg.optim_wrapper.accumulative_counts == 2  # the rest kept
    hardware.apply_to_config(cfg, decide(H100, ALL_AUTO), H100)
    assert cfg.train_dataloader.pin_memory is True
    assert cfg.model.frozen_dtype == 'bf16'


def test_command_line_amp():
    cfg = config(hardware=dict(num_workers=3))
    assert hardware.requested_settings(cfg, None, 'cuda') == dict(num_workers=3)
    assert hardware.requested_settings(cfg, 'auto', 'cpu') == dict(
        num_workers=3, amp='auto', frozen_dtype='auto'
    )
    # bare --amp: MMEngine's meaning, the wrapper only
    assert hardware.requested_settings(cfg, 'mixed', 'cuda')['amp'] == 'fp16'
    assert hardware.requested_settings(cfg, 'mixed', 'cpu') == dict(
        num_workers=3, amp='bf16'
    )
    kept = config(hardware=dict(frozen_dtype=None))
    assert hardware.requested_settings(kept, 'bf16', 'cuda') == dict(
        amp='bf16', frozen_dtype=None
    )


def test_unet_or_transformer_from_the_config():
    assert hardware.denoiser_is_unet(dict(family=dict(type='SDXL')))
    assert not hardware.denoiser_is_unet(dict(family=dict(type='Flux')))


def test_report_says_what_and_why():
    lines = hardware.report(EPYC, decide(EPYC, dict(amp='auto', threads=1)))
    assert lines[0].startswith(
        'hardware: cpu (AMD EPYC, AVX2); CPU: 2 cores, no native bf16'
    )
    assert lines[1].startswith(
        "hardware.amp = 'fp32' (auto: the CPU has no native bf16"
    )
    assert lines[2] == (
        'hardware.threads = 1 (given: set in the config or on the command line)'
    )
    assert 'nothing set to auto' in hardware.report(EPYC, {})[1]


def test_process_settings(monkeypatch):
    import torch

    calls = {}
    for kind in ('flash', 'mem_efficient', 'cudnn', 'math'):
        monkeypatch.setattr(
            torch.backends.cuda,
            f'enable_{kind}_sdp',
            lambda on, kind=kind: calls.__setitem__(kind, on),
        )
    monkeypatch.setattr(
        torch, 'set_num_threads', lambda n: calls.__setitem__('threads', n)
    )
    hardware.apply_to_process(decide(H100, dict(attention='efficient', threads=3)))
    assert calls == dict(
        flash=False, mem_efficient=True, cudnn=False, math=False, threads=3
    )
    calls.clear()
    hardware.apply_to_process(decide(H100, ALL_AUTO))  # default kernels
    assert calls == {}


@pytest.mark.parametrize(
    'caps, allocator', [(EPYC, 'retain'), (MUSL_CPU, 'default'), (H100, 'default')]
)
def test_freed_host_memory_is_retained_on_a_glibc_cpu(caps, allocator):
    decision = decide(caps, dict(allocator='auto'))['allocator']
    assert decision.value == allocator
    if allocator == 'retain':
        assert 'oneDNN' in decision.reason and '4.0-4.7 s' in decision.reason


RETAIN_CHECK = """
import ctypes, resource
from diffengine_ipa.engine import hardware

libc = ctypes.CDLL('libc.so.6')
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def faults_per_block(size=64 << 20, repeats=5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / repeats

faults_per_block()
default = faults_per_block()
caps = hardware.detect('cpu')
hardware.apply_to_process(hardware.decide(caps, dict(allocator='auto')))
faults_per_block()
print(default, faults_per_block())
"""


@pytest.mark.skipif(not is_glibc(), reason='glibc only')
def test_retained_blocks_are_not_faulted_in_again():
    """A 64 MiB block freed and allocated again: glibc's default maps it
    anew each time (~16,000 page faults); retained, it faults none."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, '-c', RETAIN_CHECK],
        capture_output=True,
        text=True,
        check=True,
    )
    default, retained = map(float, result.stdout.split())
    assert default > 10_000
    assert retained < 100


@pytest.mark.parametrize('caps', [EPYC, SAPPHIRE_RAPIDS, MPS, H100])
def test_auto_never_compiles_on_a_cpu_or_unmeasured(caps):
    decision = decide(caps, dict(compile='auto'))['compile']
    assert decision.value is False
    if caps.device == 'cpu':
        assert '0.46x' in decision.reason
    if caps.device == 'cuda':
        assert "hardware.compile='regional'" in decision.reason


def test_compile_lands_in_the_model_and_is_checked():
    cfg = config()
    hardware.apply_to_config(cfg, decide(H100, dict(compile='regional')), H100)
    assert cfg.model.compile_denoiser == 'regional'
    with pytest.raises(UserError, match="hardware.compile='fast': use auto"):
        decide(H100, dict(compile='fast'))
