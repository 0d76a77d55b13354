"""Loading the base model and image encoder, and the errors when it fails."""

import os

import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPVisionModelWithProjection

from diffengine_ipa.errors import ModelSourceError
from diffengine_ipa.models import load_component
from diffengine_ipa.models.random_models import write_base_model


def test_missing_local_folder_names_path_and_fix(tmp_path):
    path = str(tmp_path / 'nowhere' / 'tiny_sd15')
    with pytest.raises(ModelSourceError) as err:
        load_component(UNet2DConditionModel, path, 'unet')
    message = str(err.value)
    assert path in message and 'make_tiny_models.py' in message
    assert '--cfg-options model.pretrained_model_name_or_path=' in message
    assert '\n' not in message


def test_hub_id_offline_says_so():
    assert os.environ['HF_HUB_OFFLINE'] == '1'
    with pytest.raises(ModelSourceError) as err:
        load_component(
            CLIPVisionModelWithProjection,
            'openai/clip-vit-large-patch14',
            field='model.image_encoder.pretrained_model_name_or_path',
        )
    message = str(err.value)
    assert "'openai/clip-vit-large-patch14'" in message
    assert 'HF_HUB_OFFLINE=1' in message
    assert '--cfg-options model.image_encoder.pretrained_model_name_or_path=' in message
    assert '\n' not in message


def test_folder_without_the_component(tiny_family, tmp_path):
    (tmp_path / 'unet').mkdir()
    with pytest.raises(ModelSourceError, match='must hold a complete .unet.'):
        load_component(UNet2DConditionModel, str(tmp_path), 'unet')


def test_unknown_architecture():
    with pytest.raises(ModelSourceError, match="unknown architecture 'sd99'"):
        load_component(UNet2DConditionModel, 'random:sd99', 'unet')


def test_tiny_folder_is_a_real_diffusers_pipeline(tiny_family):
    pipe = StableDiffusionPipeline.from_pretrained(
        tiny_family['base'], local_files_only=True, safety_checker=None
    )
    assert pipe.unet.config.cross_attention_dim == 32
    assert pipe.feature_extractor.crop_size['height'] == 224
    ids = pipe.tokenizer('a photo of the cat').input_ids
    assert ids[0] == pipe.tokenizer.bos_token_id
    assert ids[-1] == pipe.tokenizer.eos_token_id and len(ids) > 5
    encoder = CLIPVisionModelWithProjection.from_pretrained(
        tiny_family['image_encoder'], local_files_only=True
    )
    assert encoder.config.projection_dim == 16


def test_architecture_weights_are_seeded(tmp_path):
    first, _ = write_base_model('tiny_sd15', str(tmp_path / 'a'))
    second, _ = write_base_model('tiny_sd15', str(tmp_path / 'b'))
    unets = [
        UNet2DConditionModel.from_pretrained(f, subfolder='unet')
        for f in (first, second)
    ]
    for (name, a), b in zip(
        unets[0].state_dict().items(), unets[1].state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_random_source_builds_a_whole_pipeline():
    """``random:<architecture>`` for a pipeline class: every component, in
    the asked precision (what the inference benchmark loads)."""
    pipe = load_component(
        StableDiffusionPipeline, 'random:tiny_sd15', dtype=torch.bfloat16
    )
    assert isinstance(pipe, StableDiffusionPipeline)
    assert pipe.unet.dtype == pipe.vae.dtype == torch.bfloat16
    assert pipe.image_encoder is None and pipe.safety_checker is None
