"""Prompt encoders compute what diffusers' pipelines compute."""
import diffusers
import pytest
import torch

from diffengine_ipa.errors import UserError
from diffengine_ipa.models import IPAdapter, SD15PromptEncoder, SDXLPromptEncoder


def test_sd15_matches_pipeline_encode_prompt(tiny_family):
    encoder = SD15PromptEncoder(tiny_family['base'])
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(
        tiny_family['base'], safety_checker=None)
    encodings = encoder(['a cat', ''])
    states, added = encoder.unet_conditions(encodings)
    expected, _ = pipe.encode_prompt(['a cat', ''], 'cpu', 1, False)
    assert set(encodings) == {'text_states'}
    assert added is None and torch.equal(states, expected)


def test_sdxl_matches_pipeline_encode_prompt(tiny_families):
    base = tiny_families['sdxl']['base']
    encoder = SDXLPromptEncoder(base)
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(base)
    time_ids = torch.tensor([[200., 300, 0, 16, 64, 64], [64, 64, 0, 0, 64, 64]])
    encodings = encoder(['a cat', 'the rocket'])
    assert set(encodings) == {'text_states', 'text_embeds'}
    states, added = encoder.unet_conditions(encodings, time_ids)
    expected, _, pooled, _ = pipe.encode_prompt(
        ['a cat', 'the rocket'], device='cpu', do_classifier_free_guidance=False)
    assert states.shape == (2, 77, 64)  # 32 + 32: both encoders' states
    assert torch.equal(states, expected)
    assert torch.equal(added['text_embeds'], pooled)
    assert torch.equal(added['time_ids'], time_ids)


def test_sdxl_without_time_ids_says_what_to_add(tiny_families):
    encoder = SDXLPromptEncoder(tiny_families['sdxl']['base'])
    with pytest.raises(UserError, match='add ComputeTimeIds'):
        encoder.unet_conditions(encoder(['a cat']))


def test_sdxl_model_feeds_time_ids_to_the_unet(tiny_families):
    folders = tiny_families['sdxl']
    model = IPAdapter(folders['base'], folders['image_encoder'],
                      prompt_encoder=dict(type='SDXLPromptEncoder'))
    seen = {}
    model.unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(kwargs), with_kwargs=True)
    time_ids = torch.tensor([[512., 341, 0, 21, 64, 64], [300, 451, 5, 0, 64, 64]])
    torch.manual_seed(0)
    loss = model(dict(pixel_values=torch.rand(2, 3, 64, 64) * 2 - 1,
                      clip_pixel_values=torch.randn(2, 3, 224, 224),
                      text=['a cat', 'a rocket'], time_ids=time_ids))['loss']
    assert torch.isfinite(loss)
    assert torch.equal(seen['added_cond_kwargs']['time_ids'], time_ids)
    assert seen['added_cond_kwargs']['text_embeds'].shape == (2, 32)
    text_states, (ip_tokens, ) = seen['encoder_hidden_states']
    assert text_states.shape == (2, 77, 64) and ip_tokens.shape == (2, 4, 64)
