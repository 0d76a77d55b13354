"""A quantized frozen base: the adapter trains, generates and is saved as
without quantization (torchao int8 on the CPU; fp8 and NF4 on CUDA)."""

import numpy as np
import pytest
import torch
from PIL import Image

from diffengine_ipa.errors import UserError
from diffengine_ipa.models.quantization import (
    check_quantize,
    frozen_parts,
    quantized_linear_count,
)
from diffengine_ipa.official_format import (
    load_adapter_into,
    official_key_map,
    rename_to_official,
    save_official,
)

from ..conftest import build_tiny_model
from .test_families import batch

pytest.importorskip('torchao')

EVERY_PART = dict(denoiser='int8', text_encoders='int8', image_encoder='int8')
STEPS = 4
# int8 weight-only rounds each weight to 1/127 of its row's largest: the
# tiny families' losses stay within 0.2 % of the unquantized ones (measured
# ≤ 0.05 % over 5 steps on all four families).
LOSS_RTOL = 2e-3


def train_a_little(model) -> list[float]:
    """STEPS AdamW steps on a fixed batch, same noise every step."""
    model.drop_rates = dict(text_rate=0, image_rate=0, both_rate=0)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2
    )
    inputs, losses = batch(model), []
    for _ in range(STEPS):
        torch.manual_seed(0)
        loss = model(inputs)['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def build(tiny_families, family, quantize=None, **model_args):
    torch.manual_seed(0)  # the same adapter initialisation
    model = build_tiny_model(tiny_families, family)
    if quantize is None:
        return model
    from mmengine.config import Config

    from diffengine_ipa.registry import MODELS

    from ..conftest import TINY_CONFIGS, tiny_overrides

    cfg = Config.fromfile(TINY_CONFIGS[family])
    cfg.merge_from_dict(tiny_overrides(tiny_families[family]))
    torch.manual_seed(0)
    return MODELS.build(dict(cfg.model, quantize=quantize, **model_args))


@pytest.fixture(scope='module')
def trained_pairs(tiny_families):
    """``{family: (plain model, quantized model, plain losses, quantized
    losses)}`` after STEPS steps each, trained once."""
    pairs = {}

    def pair(family):
        if family not in pairs:
            plain = build(tiny_families, family)
            quantized = build(tiny_families, family, EVERY_PART)
            pairs[family] = (
                plain,
                quantized,
                train_a_little(plain),
                train_a_little(quantized),
            )
        return pairs[family]

    return pair


@pytest.mark.parametrize('family', ['sd15', 'flux'])
def test_quantized_base_trains_like_the_unquantized(trained_pairs, family):
    plain, quantized, plain_losses, quantized_losses = trained_pairs(family)
    for part, modules in frozen_parts(quantized).items():
        assert sum(map(quantized_linear_count, modules)) > 0, part
    assert all(
        quantized_linear_count(m) == 0
        for part in frozen_parts(plain).values()
        for m in part
    )
    assert quantized.adapter_parameter_names() == plain.adapter_parameter_names()
    assert sum(p.numel() for p in quantized.parameters() if p.requires_grad) == sum(
        p.numel() for p in plain.parameters() if p.requires_grad
    )
    assert quantized_losses == pytest.approx(plain_losses, rel=LOSS_RTOL)
    assert quantized_losses != plain_losses  # the base really is quantized
    assert quantized_losses[-1] < quantized_losses[0]  # and the adapter learns


@pytest.mark.parametrize('family', ['sd15', 'flux'])
def test_quantized_base_writes_the_same_adapter_file(
    trained_pairs, family, tiny_families, tmp_path
):
    """Same keys, shapes and dtypes as without quantization; the file
    loads into an unquantized model and gives it the trained adapter."""
    plain, quantized, _, _ = trained_pairs(family)
    files = {}
    for name, model in dict(plain=plain, quantized=quantized).items():
        official = rename_to_official(model.state_dict(), official_key_map(model))
        files[name] = {k: (tuple(v.shape), v.dtype) for k, v in official.items()}
        save_official(official, str(tmp_path / f'{name}.safetensors'))
        assert all(type(v) is torch.Tensor for v in official.values())
    assert files['quantized'] == files['plain']
    fresh = build(tiny_families, family)
    load_adapter_into(fresh, str(tmp_path / 'quantized.safetensors'))
    trained = quantized.state_dict()
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in trained.items())


@pytest.mark.parametrize('family', ['sd15', 'flux'])
def test_quantized_base_generates_with_the_adapter(trained_pairs, family):
    _, quantized, _, _ = trained_pairs(family)
    quantized.generation_cfg.update(steps=2, height=64, width=64)
    reference = Image.new('RGB', (64, 64), (200, 40, 40))
    out = quantized.predict(
        dict(img=[reference] * 2, prompt=['a cat'] * 2, scale=[0.0, 1.0], seed=[0, 0])
    )
    off, on = (torch.tensor(np.asarray(o['image']), dtype=torch.float) for o in out)
    assert out[0]['image'].size == (64, 64)
    assert (off - on).abs().mean() > 0.5  # the adapter changes the image


def test_a_half_precision_base_quantizes_under_autocast(tiny_families):
    """bf16 frozen weights, int8 on top: every layer still gets bf16 (a
    quantized matmul answers in its input's dtype, outside autocast)."""
    model = build(tiny_families, 'sd15', dict(denoiser='int8'), frozen_dtype='bf16')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = model(batch(model))['loss']
    loss.backward()
    assert torch.isfinite(loss)
    assert quantized_linear_count(model.family.unet) > 0


@pytest.mark.parametrize(
    'spec, message',
    [
        (dict(unet='int8'), 'model.quantize.unet: unknown part; use denoiser'),
        (dict(denoiser='int4'), "model.quantize.denoiser='int4': use 'int8'"),
        ('int8', "model.quantize='int8': give a dict"),
    ],
)
def test_a_bad_quantize_entry_is_one_line(spec, message):
    with pytest.raises(UserError, match=message) as err:
        check_quantize(spec)
    assert '\n' not in str(err.value)


def test_none_leaves_a_part_unquantized():
    assert check_quantize(dict(denoiser='int8', text_encoders=None)) == dict(
        denoiser='int8'
    )
    assert check_quantize(None) == {}


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only message')
@pytest.mark.parametrize('mode', ['fp8', 'nf4'])
def test_a_cuda_mode_on_a_cpu_is_one_line(tiny_families, mode):
    with pytest.raises(
        UserError, match=f"model.quantize.denoiser='{mode}' needs a CUDA GPU"
    ) as err:
        build(tiny_families, 'sd15', dict(denoiser=mode))
    assert '\n' not in str(err.value)


@pytest.mark.cuda
@pytest.mark.parametrize('mode', ['int8', 'fp8', 'nf4'])
def test_quantized_base_trains_on_cuda(tiny_families, mode):
    if mode == 'fp8' and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip('no float8 on this GPU')
    pytest.importorskip('bitsandbytes' if mode == 'nf4' else 'torchao')
    model = build(tiny_families, 'sd15', dict(denoiser=mode, text_encoders=mode)).cuda()
    model.drop_rates = dict(text_rate=0, image_rate=0, both_rate=0)
    inputs = {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch(model).items()}
    with torch.autocast('cuda', dtype=torch.bfloat16):
        loss = model(inputs)['loss']
    loss.backward()
    assert torch.isfinite(loss)
    assert quantized_linear_count(model.family.denoiser) > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
