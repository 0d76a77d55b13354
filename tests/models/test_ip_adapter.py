"""The model: what trains, what stays frozen, the drops, the loss."""

import pytest
import torch
from accelerate import init_empty_weights

from diffengine_ipa.errors import UserError
from diffengine_ipa.models import IPAdapter, condition_drops
from diffengine_ipa.models.families import cross_attention_layers
from diffengine_ipa.official_format import official_key_map


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def expected_trainable(model) -> int:
    """2 · D_ctx · Σ hidden over the UNet's own cross-attention layers, plus
    the projection Linear(D_img, 4·D_ctx) and its LayerNorm(D_ctx)."""
    unet = model.family.unet
    layers = cross_attention_layers(unet).values()
    cross = unet.config.cross_attention_dim
    embed = model.image_encoder.feature_dim('pooled')
    kv = sum(2 * cross * layer.to_k.out_features for layer in layers)
    return kv + embed * 4 * cross + 4 * cross + 2 * cross


@pytest.mark.parametrize(
    'image_encoder, count',
    [
        ('clip-vit-large-patch14', 21_533_184),
        ('clip-vit-huge-patch14', 22_319_616),
    ],
)
def test_full_size_sd15_trainable_parameters(image_encoder, count):
    with init_empty_weights():  # full-size architecture, no weights
        model = IPAdapter('random:sd15', f'random:{image_encoder}')
    assert len(cross_attention_layers(model.family.unet)) == 16
    assert trainable(model) == expected_trainable(model) == count


@pytest.mark.parametrize(
    'base, family, hidden, resampler, total',
    [
        ('sd15', 'SD15', 768, 29_918_208, 49_087_488),
        ('sdxl', 'SDXL', 1280, 82_961_664, 423_748_864),
    ],
)
def test_full_size_plus_trainable_parameters(base, family, hidden, resampler, total):
    """Plus with OpenCLIP ViT-H/14 (1280-d hidden states), as published."""
    with init_empty_weights():
        model = IPAdapter(
            f'random:{base}',
            'random:clip-vit-huge-patch14',
            family=dict(type=family),
            image_projection=dict(
                type='IPAdapterPlusImageProjection', hidden_dims=hidden
            ),
        )
    unet = model.family.unet
    projection = model.image_projection
    assert projection.latents.shape == (1, 16, hidden)
    assert projection.proj_in.in_features == 1280  # from the encoder
    assert projection.proj_out.out_features == unet.config.cross_attention_dim
    assert len(projection.layers) == 4
    assert all(layer.attn.heads == hidden // 64 for layer in projection.layers)
    assert sum(p.numel() for p in projection.parameters()) == resampler
    kv = sum(
        2 * unet.config.cross_attention_dim * layer.to_k.out_features
        for layer in cross_attention_layers(unet).values()
    )
    assert trainable(model) == resampler + kv == total


def test_full_size_sdxl_trainable_parameters():
    """70 cross-attention layers (10 at 640, 60 at 1280), K/V from 2048-d
    tokens, projection from ViT-bigG's 1280-d embedding: the official
    ip-adapter_sdxl file's 351,285,248 parameters (~703 MB in fp16)."""
    with init_empty_weights():
        model = IPAdapter(
            'random:sdxl', 'random:clip-vit-bigg-patch14', family=dict(type='SDXL')
        )
    widths = sorted(
        layer.to_k.out_features
        for layer in cross_attention_layers(model.family.unet).values()
    )
    assert widths == [640] * 10 + [1280] * 60
    assert trainable(model) == expected_trainable(model) == 351_285_248
    numbers = sorted(
        int(key.split('.')[1])
        for key in official_key_map(model).values()
        if key.endswith('to_k_ip.weight')
    )
    assert numbers == list(range(1, 140, 2))


def test_full_size_sd15_official_numbering():
    with init_empty_weights():
        model = IPAdapter('random:sd15', 'random:clip-vit-large-patch14')
    key_map = official_key_map(model)
    numbers = {
        int(key.split('.')[1])
        for key in key_map.values()
        if key.startswith('ip_adapter.')
    }
    assert sorted(numbers) == list(range(1, 32, 2))
    # Each number is the layer's position in the UNet's attn_processors.
    names = list(model.family.unet.attn_processors)
    for ours, official in key_map.items():
        if official.startswith('ip_adapter.'):
            index = int(official.split('.')[1])
            kind = official.split('.')[2]
            assert ours == f'family.unet.{names[index]}.{kind}.0.weight'


def test_only_adapter_parameters_train(tiny_model):
    names = tiny_model.adapter_parameter_names()
    assert names and all(
        name.startswith('image_projection.')
        or '.to_k_ip.' in name
        or '.to_v_ip.' in name
        for name in names
    )
    assert trainable(tiny_model) == expected_trainable(tiny_model)


def test_kv_starts_as_copy_of_text_kv(tiny_model):
    for layer in cross_attention_layers(tiny_model.family.unet).values():
        assert torch.equal(layer.processor.to_k_ip[0].weight, layer.to_k.weight)
        assert torch.equal(layer.processor.to_v_ip[0].weight, layer.to_v.weight)


def batch(size=2, resolution=64):
    torch.manual_seed(0)
    return dict(
        pixel_values=torch.rand(size, 3, resolution, resolution) * 2 - 1,
        reference_pixel_values=torch.randn(size, 3, 224, 224),
        text=['a cat', 'a rocket'][:size],
    )


def test_train_step_changes_adapter_only(tiny_model):
    frozen = {
        k: v.clone()
        for k, v in torch.nn.Module.state_dict(tiny_model).items()
        if k not in tiny_model.adapter_parameter_names()
    }
    adapter = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=1e-3, weight_decay=0.01)
    loss = tiny_model(batch())['loss']
    loss.backward()
    for name, param in tiny_model.named_parameters():
        assert (param.grad is not None) == param.requires_grad, name
    optimizer.step()
    after = torch.nn.Module.state_dict(tiny_model)
    assert all(torch.equal(after[k], v) for k, v in frozen.items())
    assert all(not torch.equal(after[k], v) for k, v in adapter.items())


def test_drop_rates_over_many_draws():
    torch.manual_seed(0)
    drop_text, drop_image = condition_drops(
        torch.rand(200_000), text_rate=0.05, image_rate=0.05, both_rate=0.05
    )
    text_only = (drop_text & ~drop_image).float().mean().item()
    image_only = (drop_image & ~drop_text).float().mean().item()
    both = (drop_text & drop_image).float().mean().item()
    for rate in (text_only, image_only, both):
        assert rate == pytest.approx(0.05, abs=0.003)


def record_prompts(model, seen: dict) -> None:
    """Keep the first texts the model's family encodes in ``seen``."""
    encode = model.family.encode_prompt

    def recording(texts):
        seen.setdefault('texts', texts)
        return encode(texts)

    model.family.encode_prompt = recording


def test_dropped_samples_get_empty_prompt_and_zero_embedding(tiny_model):
    seen = {}
    record_prompts(tiny_model, seen)
    tiny_model.image_projection.register_forward_pre_hook(
        lambda module, args: seen.setdefault('embeds', args[0])
    )
    tiny_model.drop_rates = dict(text_rate=0, image_rate=0, both_rate=1.0)
    tiny_model(batch())
    assert seen['texts'] == ['', '']
    assert seen['embeds'].shape == (2, 16) and not seen['embeds'].any()

    seen.clear()
    tiny_model.drop_rates = dict(text_rate=0, image_rate=0, both_rate=0)
    tiny_model(batch())
    assert seen['texts'] == ['a cat', 'a rocket'] and seen['embeds'].abs().sum() > 0


def test_state_dict_is_the_adapter(tiny_model):
    state = tiny_model.state_dict()
    assert set(state) == tiny_model.adapter_parameter_names()
    # An adapter-only dict loads strictly: the frozen base is not "missing".
    assert not tiny_model.load_state_dict(state, strict=True).missing_keys
    state.pop(next(iter(state)))
    with pytest.raises(RuntimeError, match='Missing key'):
        tiny_model.load_state_dict(state, strict=True)


def test_bad_drop_rates_and_image_size(tiny_family, tiny_model):
    with pytest.raises(UserError, match='drop_rate'):
        IPAdapter(
            tiny_family['base'],
            tiny_family['image_encoder'],
            text_drop_rate=0.6,
            image_drop_rate=0.6,
        )
    inputs = batch()
    inputs['reference_pixel_values'] = torch.randn(2, 3, 64, 64)
    with pytest.raises(UserError, match='takes 224 px images but the data gives 64 px'):
        tiny_model(inputs)


def test_plus_drops_to_the_features_of_a_zero_image(tiny_families):
    from ..conftest import build_tiny_model

    model = build_tiny_model(tiny_families, 'sd15_plus')
    seen = {}
    model.image_projection.register_forward_pre_hook(
        lambda module, args: seen.setdefault('features', args[0])
    )
    model.drop_rates = dict(text_rate=0, image_rate=1.0, both_rate=0)
    model(batch())
    zero_image = torch.zeros(1, 3, 224, 224)
    expected = model.image_encoder.model(
        zero_image, output_hidden_states=True
    ).hidden_states[-2]
    assert seen['features'].shape == (2, 50, 32)  # 7 × 7 patches + CLS
    assert expected.abs().sum() > 0  # not zero features
    assert torch.allclose(seen['features'], expected.expand(2, -1, -1), atol=1e-6)
