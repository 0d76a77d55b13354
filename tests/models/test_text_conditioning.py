"""Each family conditions its denoiser on text as its diffusers pipeline does."""

import diffusers
import pytest
import torch

from diffengine_ipa.errors import UserError
from diffengine_ipa.models import SD3, SD15, SDXL, Flux, IPAdapter


def test_sd15_matches_pipeline_encode_prompt(tiny_family):
    family = SD15(tiny_family['base'])
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(
        tiny_family['base'], safety_checker=None
    )
    encodings = family.encode_prompt(['a cat', ''])
    expected, _ = pipe.encode_prompt(['a cat', ''], 'cpu', 1, False)
    assert set(encodings) == {'text_states'}
    assert family.conditions(encodings, {}) == encodings
    assert torch.equal(encodings['text_states'], expected)


def test_sdxl_matches_pipeline_encode_prompt(tiny_families):
    base = tiny_families['sdxl']['base']
    family = SDXL(base)
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(base)
    time_ids = torch.tensor([[200.0, 300, 0, 16, 64, 64], [64, 64, 0, 0, 64, 64]])
    encodings = family.encode_prompt(['a cat', 'the rocket'])
    assert set(encodings) == {'text_states', 'text_embeds'}
    conditions = family.conditions(encodings, dict(time_ids=time_ids))
    expected, _, pooled, _ = pipe.encode_prompt(
        ['a cat', 'the rocket'], device='cpu', do_classifier_free_guidance=False
    )
    assert conditions['text_states'].shape == (2, 77, 64)  # 32 + 32
    assert torch.equal(conditions['text_states'], expected)
    assert torch.equal(conditions['text_embeds'], pooled)
    assert torch.equal(conditions['time_ids'], time_ids)


@pytest.mark.parametrize(
    'name, cls, pipeline, length, widths',
    [
        ('sd3', SD3, 'StableDiffusion3Pipeline', 77 + 32, (96, 64)),
        ('flux', Flux, 'FluxPipeline', 32, (48, 32)),
    ],
)
def test_dit_families_match_pipeline_encode_prompt(
    tiny_families, name, cls, pipeline, length, widths
):
    """SD3: CLIP-L + CLIP-G states padded to T5's width, then T5's; pooled =
    both CLIPs'. FLUX: T5's states; pooled = CLIP-L's."""
    base = tiny_families[name]['base']
    family = cls(base, max_sequence_length=32)
    pipe = getattr(diffusers, pipeline).from_pretrained(base)
    encodings = family.encode_prompt(['a cat', 'the rocket on a launch pad'])
    assert set(encodings) == {'prompt_embeds', 'pooled_prompt_embeds'}
    kwargs = dict(do_classifier_free_guidance=False) if name == 'sd3' else {}
    expected = pipe.encode_prompt(
        ['a cat', 'the rocket on a launch pad'],
        None,
        **({'prompt_3': None} if name == 'sd3' else {}),
        device='cpu',
        max_sequence_length=32,
        **kwargs,
    )
    pooled = expected[2] if name == 'sd3' else expected[1]
    assert encodings['prompt_embeds'].shape == (2, length, widths[0])
    assert encodings['pooled_prompt_embeds'].shape == (2, widths[1])
    assert torch.equal(encodings['prompt_embeds'], expected[0])
    assert torch.equal(encodings['pooled_prompt_embeds'], pooled)


def test_sdxl_without_time_ids_says_what_to_add(tiny_families):
    family = SDXL(tiny_families['sdxl']['base'])
    with pytest.raises(UserError, match='add ComputeTimeIds'):
        family.conditions(family.encode_prompt(['a cat']), {})


def test_sdxl_model_feeds_time_ids_to_the_unet(tiny_families):
    folders = tiny_families['sdxl']
    model = IPAdapter(
        folders['base'], folders['image_encoder'], family=dict(type='SDXL')
    )
    seen = {}
    model.family.unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(kwargs), with_kwargs=True
    )
    time_ids = torch.tensor([[512.0, 341, 0, 21, 64, 64], [300, 451, 5, 0, 64, 64]])
    torch.manual_seed(0)
    loss = model(
        dict(
            pixel_values=torch.rand(2, 3, 64, 64) * 2 - 1,
            reference_pixel_values=torch.randn(2, 3, 224, 224),
            text=['a cat', 'a rocket'],
            time_ids=time_ids,
        )
    )['loss']
    assert torch.isfinite(loss)
    assert torch.equal(seen['added_cond_kwargs']['time_ids'], time_ids)
    assert seen['added_cond_kwargs']['text_embeds'].shape == (2, 32)
    text_states, (ip_tokens,) = seen['encoder_hidden_states']
    assert text_states.shape == (2, 77, 64) and ip_tokens.shape == (2, 4, 64)
