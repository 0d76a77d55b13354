"""The CUDA path: fp16 with loss scaling, bf16 autocast, half-precision
frozen weights, fused attention kernels and torch.compile, on the tiny SD1.5
family. Skipped without a CUDA GPU; benchmarks/gpu/run.sh runs them.

Tolerances: a fixed batch's loss under bf16 autocast lies within 5 % of
fp32's (bf16 keeps 8 bits of mantissa, ~0.4 % per rounding, over a few dozen
layers); compiled and eager fp32 losses (TF32 off) within 1e-4 relative.
"""

import contextlib
import math

import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from diffengine_ipa.engine import hardware
from diffengine_ipa.models import IPAdapter
from diffengine_ipa.registry import DATASETS, OPTIM_WRAPPERS

from ..conftest import load_tiny_config
from .test_training import read_losses

pytestmark = pytest.mark.cuda

BF16_LOSS_RTOL = 5e-2
COMPILE_LOSS_RTOL = 1e-4


@pytest.fixture(scope='module')
def batch_cpu(tiny_family, tmp_path_factory) -> dict:
    """Four samples of the mini dataset through the tiny config's pipeline."""
    cfg = load_tiny_config(tiny_family, tmp_path_factory.mktemp('batch'))
    init_default_scope('diffengine_ipa')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return default_collate([dataset[i] for i in range(4)])


def cuda_model(tiny_family, **options) -> IPAdapter:
    torch.manual_seed(0)
    return (
        IPAdapter(tiny_family['base'], tiny_family['image_encoder'], **options)
        .cuda()
        .train()
    )


def loss_of(
    model: IPAdapter, batch_cpu: dict, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The loss of the fixed batch; under autocast to ``dtype`` if given
    (else in whatever autocast state the caller set)."""
    batch = model.data_preprocessor(batch_cpu, True)
    torch.manual_seed(0)
    autocast = (
        torch.autocast('cuda', dtype=dtype)
        if dtype is not None
        else contextlib.nullcontext()
    )
    with autocast:
        return model(**batch)['loss']


def test_fp16_amp_trains_through_the_runner(tiny_family, tmp_path):
    """What `--amp` on a GPU gives: MMEngine's AmpOptimWrapper (fp16, dynamic
    loss scale) and fp16 frozen weights, through a real Runner."""
    cfg = load_tiny_config(tiny_family, tmp_path, **{'train_cfg.max_epochs': 1})
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    caps = hardware.detect('cuda')
    decisions = hardware.decide(caps, dict(amp='fp16', frozen_dtype='auto'))
    hardware.apply_to_config(cfg, decisions, caps)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = read_losses(str(tmp_path))
    assert losses and all(math.isfinite(x) for x in losses)
    assert runner.model.family.unet.dtype == torch.float16
    scale = runner.optim_wrapper.loss_scaler.get_scale()
    assert math.isfinite(scale) and scale > 0


def test_fp16_loss_scaling_skips_an_overflowing_step(tiny_family, batch_cpu):
    model = cuda_model(tiny_family, frozen_dtype='fp16')
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            type='AmpOptimWrapper',
            loss_scale='dynamic',
            dtype='float16',
            optimizer=torch.optim.AdamW(
                [p for p in model.parameters() if p.requires_grad], lr=1e-3
            ),
        )
    )
    adapter = {n: p for n, p in model.named_parameters() if p.requires_grad}

    def step(factor: float) -> None:
        with wrapper.optim_context(model):
            loss = loss_of(model, batch_cpu) * factor
        wrapper.update_params(loss)

    step(1.0)
    before = {n: p.detach().clone() for n, p in adapter.items()}
    scale = wrapper.loss_scaler.get_scale()
    step(1e30)  # the scaled gradients overflow fp16
    assert wrapper.loss_scaler.get_scale() < scale  # scale lowered ...
    assert all(torch.equal(before[n], p) for n, p in adapter.items())  # skipped
    step(1.0)
    assert any(not torch.equal(before[n], p) for n, p in adapter.items())


def test_bf16_autocast_matches_fp32(tiny_family, batch_cpu):
    model = cuda_model(tiny_family)
    with torch.no_grad():
        fp32 = loss_of(model, batch_cpu).item()
        bf16 = loss_of(model, batch_cpu, torch.bfloat16).item()
    assert bf16 == pytest.approx(fp32, rel=BF16_LOSS_RTOL)
    frozen = cuda_model(tiny_family, frozen_dtype='bf16')
    with torch.no_grad():
        frozen_bf16 = loss_of(frozen, batch_cpu, torch.bfloat16).item()
    assert frozen_bf16 == pytest.approx(fp32, rel=BF16_LOSS_RTOL)


@pytest.mark.parametrize('frozen', ['fp16', 'bf16'])
def test_half_frozen_weights_keep_the_adapter_fp32(tiny_family, batch_cpu, frozen):
    model = cuda_model(tiny_family, frozen_dtype=frozen)
    half = getattr(torch, dict(fp16='float16', bf16='bfloat16')[frozen])
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen_params = [p for p in model.parameters() if not p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    vae_dtype = (
        torch.float32 if model.family.vae.config.force_upcast else half
    )  # an fp32-only VAE stays fp32
    for name, param in model.named_parameters():
        if not param.requires_grad:
            assert param.dtype == (
                vae_dtype if name.startswith('family.vae.') else half
            ), name
    loss = loss_of(model, batch_cpu, half)
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in trainable)
    assert all(p.grad is None for p in frozen_params)


def test_attention_runs_on_fused_kernels(tiny_family, batch_cpu):
    """With PyTorch's math fallback excluded, every attention call of a bf16
    training step (denoiser with the adapter, text and image encoders) still
    runs: each went to a fused kernel."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = cuda_model(tiny_family, frozen_dtype='bf16')
    fused = [
        SDPBackend.FLASH_ATTENTION,
        SDPBackend.EFFICIENT_ATTENTION,
        SDPBackend.CUDNN_ATTENTION,
    ]
    with sdpa_kernel(fused):
        loss = loss_of(model, batch_cpu, torch.bfloat16)
        loss.backward()
    assert torch.isfinite(loss)
    with (
        sdpa_kernel([SDPBackend.MATH]),
        torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CUDA]
        ) as math_only,
    ):
        loss_of(model, batch_cpu, torch.bfloat16)
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CUDA]
    ) as default:
        loss_of(model, batch_cpu, torch.bfloat16)
    names = ' '.join(e.name.lower() for e in default.events())
    assert any(k in names for k in ('flash', 'fmha', 'efficient', 'cudnn'))
    assert 'flash' not in ' '.join(e.name.lower() for e in math_only.events())


def test_compiled_denoiser_gives_the_same_loss(tiny_family, batch_cpu, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)  # exact fp32
    with torch.no_grad():
        eager = loss_of(cuda_model(tiny_family), batch_cpu).item()
        compiled = cuda_model(tiny_family, compile_denoiser=True)
        first = loss_of(compiled, batch_cpu).item()
        second = loss_of(compiled, batch_cpu).item()
    assert first == pytest.approx(eager, rel=COMPILE_LOSS_RTOL)
    assert second == pytest.approx(eager, rel=COMPILE_LOSS_RTOL)
