"""The families: what trains, the numbers diffusers agrees with, and
each family's own choices (adapter layers, initialisation, null image)."""

import pytest
import torch
from accelerate import init_empty_weights

from diffengine_ipa.errors import UserError
from diffengine_ipa.models import IPAdapter
from diffengine_ipa.models.random_models import build_component
from diffengine_ipa.official_format import (
    describe_official,
    nest_official,
    official_key_map,
    rename_to_official,
)

from ..conftest import FAMILIES, build_tiny_model


@pytest.mark.parametrize(
    'architecture, encoder, family, layers, count',
    [
        ('sd15', 'clip-vit-large-patch14', 'SD15', 16, 21_533_184),
        ('sdxl', 'clip-vit-bigg-patch14', 'SDXL', 70, 351_285_248),
        # InstantX's SD3.5-Large adapter: Resampler 111,637,376 + 38 blocks of
        # 18,060,224 (AdaLN 6,230,784, K/V 2 × 5,914,624, three RMS norms).
        ('sd35_large', 'siglip-so400m-patch14-384', 'SD3', 38, 797_925_888),
        # XLabs' FLUX.1 adapter: projection 12,607,488 + 19 blocks of K/V with
        # biases, 2 × (4096 · 3072 + 3072) (982 MB in bf16, as XLabs' file).
        ('flux1_dev', 'clip-vit-large-patch14', 'Flux', 19, 490_874_880),
        # Chroma1-HD: FLUX.1's double-stream blocks, so XLabs' adapter's size.
        ('chroma1_hd', 'clip-vit-large-patch14', 'Chroma', 19, 490_874_880),
        # FLUX.1 Kontext [dev]: FLUX.1 [dev]'s transformer.
        ('flux1_kontext_dev', 'clip-vit-large-patch14', 'FluxKontext', 19, 490_874_880),
    ],
)
def test_full_size_counts_equal_what_diffusers_allocates(
    architecture, encoder, family, layers, count
):
    """Our full-size model on the meta device, and the modules diffusers'
    own loader builds from a file of that layout."""
    with init_empty_weights():
        model = IPAdapter(
            f'random:{architecture}', f'random:{encoder}', family=dict(type=family)
        )
        plain = build_component(architecture, model.family.denoiser_name)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    state = {
        k: torch.empty(v.shape, device='meta') for k, v in model.state_dict().items()
    }
    official = rename_to_official(state, official_key_map(model))
    nested = nest_official(official)
    attention = nested['ip_adapter'] if family == 'SD3' else [nested]
    processors = plain._convert_ip_adapter_attn_to_diffusers(
        attention, low_cpu_mem_usage=True
    )
    projection = plain._convert_ip_adapter_image_proj_to_diffusers(
        nested['image_proj'], low_cpu_mem_usage=True
    )
    theirs = sum(
        p.numel()
        for m in [*processors.values(), projection]
        if isinstance(m, torch.nn.Module)
        for p in m.parameters()
    )
    assert trainable == theirs == count
    assert describe_official(official)['layers'] == layers
    assert describe_official(official)['parameters'] == count


def batch(model, size=2):
    torch.manual_seed(0)
    side = model.image_encoder.image_size
    return dict(
        pixel_values=torch.rand(size, 3, 64, 64) * 2 - 1,
        reference_pixel_values=torch.randn(size, 3, side, side),
        text=['a cat', 'a rocket'][:size],
        time_ids=torch.tensor([[64.0, 64, 0, 0, 64, 64]] * size),
        input_pixel_values=torch.rand(size, 3, 64, 64) * 2 - 1,  # Kontext's
    )


@pytest.mark.parametrize('family', FAMILIES)
def test_a_step_changes_the_adapter_only(tiny_families, family):
    model = build_tiny_model(tiny_families, family)
    adapter = model.adapter_parameter_names()
    assert adapter and all(
        name.startswith('image_projection.') or '.processor.' in name
        for name in adapter
    )
    frozen = {
        k: v.clone()
        for k, v in torch.nn.Module.state_dict(model).items()
        if k not in adapter
    }
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3
    )
    model(batch(model))['loss'].backward()
    for name, param in model.named_parameters():
        assert (param.grad is not None) == param.requires_grad, name
    optimizer.step()
    after = torch.nn.Module.state_dict(model)
    assert all(torch.equal(after[k], v) for k, v in frozen.items())
    moved = [k for k, v in before.items() if not torch.equal(after[k], v)]
    assert len(moved) > len(before) // 2


@pytest.mark.parametrize('family', FAMILIES)
def test_loss_goes_down_on_a_fixed_batch(tiny_families, family):
    model = build_tiny_model(tiny_families, family)
    model.drop_rates = dict(text_rate=0, image_rate=0, both_rate=0)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2
    )
    inputs, losses = batch(model), []
    for _ in range(20):
        torch.manual_seed(0)  # same noise and timesteps: only the adapter moves
        loss = model(inputs)['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.85 * losses[0]


@pytest.mark.parametrize('family', FAMILIES)
def test_gradient_checkpointing_gives_the_same_gradients(tiny_families, family):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)  # the same adapter initialisation
        model = build_tiny_model(tiny_families, family)
        if checkpointing:
            model.family.denoiser.enable_gradient_checkpointing()
        model.train()
        torch.manual_seed(0)
        model(batch(model))['loss'].backward()
        grads.append(
            {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        )
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name
    assert any(grad.any() for grad in grads[0].values())


def test_dit_adapter_layers_and_initialisation(tiny_families):
    """SD3: every attention layer, K/V copied from the layer's own, AdaLN
    starting as a plain norm. FLUX: the double-stream blocks only, V zero."""
    sd3 = build_tiny_model(tiny_families, 'sd3')
    transformer = sd3.family.transformer
    assert sd3.family.adapter_layers(transformer) == list(transformer.attn_processors)
    for block in transformer.transformer_blocks:
        processor = block.attn.processor
        assert torch.equal(processor.to_k_ip.weight, block.attn.to_k.weight)
        assert not processor.norm_ip.linear.weight.any()

    flux = build_tiny_model(tiny_families, 'flux')
    transformer = flux.family.transformer
    names = flux.family.adapter_layers(transformer)
    assert names == [
        'transformer_blocks.0.attn.processor',
        'transformer_blocks.1.attn.processor',
    ]
    assert len(transformer.attn_processors) == 3  # + one single-stream block
    for block in transformer.transformer_blocks:
        assert not block.attn.processor.to_v_ip[0].weight.any()


@pytest.mark.parametrize('family', ['flux', 'chroma', 'qwen_image'])
def test_flux_adapter_starts_as_a_no_op(tiny_families, family):
    """With V at zero the image attention adds nothing: the prediction is
    the base model's, whatever the image."""
    model = build_tiny_model(tiny_families, family).eval()
    inputs = batch(model)
    with torch.no_grad():
        latents = torch.randn(2, 4, 32, 32)
        timesteps = torch.tensor([500.0, 900.0])
        conditions = model.family.encode_prompt(inputs['text'])
        features = model.image_encoder(inputs['reference_pixel_values'])
        tokens = model.image_projection(features)
        with_image = model.family.denoise(latents, timesteps, conditions, tokens)
        other = model.family.denoise(
            latents, timesteps, conditions, torch.randn_like(tokens)
        )
    assert torch.equal(with_image, other)


@pytest.mark.parametrize(
    'family, rule',
    [
        ('sd15', 'zero_features'),
        ('sd15_plus', 'zero_pixels'),
        ('sd3', 'zero_features'),
        ('flux', 'black_image'),
        ('chroma', 'black_image'),  # ChromaPipeline's np.zeros image
        ('qwen_image', 'black_image'),  # the kit's loader: FluxPipeline's
    ],
)
def test_dropped_image_is_the_pipelines_unconditional_image(
    tiny_families, family, rule
):
    model = build_tiny_model(tiny_families, family)
    null = model.null_image_features()
    kind = model.image_projection.image_features
    encoder = model.image_encoder
    if rule == 'zero_features':
        assert not null.any()
        return
    size = encoder.image_size
    pixels = (
        torch.zeros(1, 3, size, size)
        if rule == 'zero_pixels'
        else encoder.preprocess([__import__('PIL.Image').Image.new('RGB', (8, 8))])
    )
    assert torch.equal(null, encoder(pixels, kind)) and null.any()


@pytest.mark.parametrize('family', ['sd3', 'flux', 'chroma', 'qwen_image'])
def test_an_image_size_that_does_not_patch_is_one_line(tiny_families, family):
    model = build_tiny_model(tiny_families, family)
    inputs = batch(model)
    inputs['pixel_values'] = torch.rand(2, 3, 72, 72) * 2 - 1  # latents 36 → ok
    model(inputs)
    inputs['pixel_values'] = torch.rand(2, 3, 66, 66) * 2 - 1  # latents 33
    with pytest.raises(UserError, match='multiple of 16'):
        model(inputs)
