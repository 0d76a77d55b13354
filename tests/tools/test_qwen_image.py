"""Qwen-Image, which no diffusers loader takes: the kit's loader on a plain
``QwenImagePipeline`` gives the pixels of tools/infer.py, the image prompt
matters, and the converted file is named for its family."""

import numpy as np
import pytest
import torch
from diffusers import QwenImagePipeline
from PIL import Image

import diffengine_ipa
from diffengine_ipa.errors import UserError

from ..conftest import TINY_CONFIGS, tiny_overrides
from .diffusers_side import diffusers_pixels
from .helpers import run_tool_here, run_tool_in_process
from .published_files import official_file
from .test_diffusers_interop import CAT, INFER_CAT, PROMPT


def pixels(pipe, **kwargs) -> np.ndarray:
    return diffusers_pixels(pipe, 'qwen_image', PROMPT, **kwargs)


def test_infer_equals_a_plain_pipeline_with_the_loader(tiny_families, tmp_path):
    """A random adapter (XLabs' names, strong weights) at scale 0.7: the
    same image both ways (true CFG with the black negative image, as
    FluxPipeline), from the image or from its embeddings; at scale 0 and
    after ``unload_ip_adapter`` the base model's image."""
    folders = tiny_families['qwen_image']
    adapter = tmp_path / 'adapter.safetensors'
    official_file(tiny_families, 'qwen_image', adapter)
    options = [f'{k}={v}' for k, v in tiny_overrides(folders).items()]
    run_tool_here(
        'infer.py',
        TINY_CONFIGS['qwen_image'],
        adapter,
        *INFER_CAT,
        '--out',
        tmp_path / 'ours.png',
        '--cfg-options',
        *options,
    )
    ours = np.asarray(Image.open(tmp_path / 'ours.png'), dtype=np.int16)

    pipe = QwenImagePipeline.from_pretrained(folders['base'])
    pipe.set_progress_bar_config(disable=True)
    base = pixels(pipe)
    with pytest.raises(UserError, match='takes a QwenImagePipeline'):
        diffengine_ipa.load_ip_adapter(object(), str(adapter))
    loaded = diffengine_ipa.load_ip_adapter(
        pipe,
        str(adapter),
        scale=0.7,
        image_encoder=folders['image_encoder'],
        image_encoder_dtype=torch.float32,
    )
    assert loaded is pipe and type(pipe).__name__ == 'QwenImageIPAdapterPipeline'
    reference = Image.open(CAT).convert('RGB')
    theirs = pixels(pipe, ip_adapter_image=reference)
    assert ours.shape == theirs.shape == (64, 64, 3)
    assert np.abs(ours - theirs).max() <= 2  # ≤ 2/255 (measured: 0)
    assert np.abs(theirs - base).max() > 20  # the reference changes the image
    embeds = pipe.encode_image(reference, 'cpu', 1)[None]
    assert np.array_equal(pixels(pipe, ip_adapter_image_embeds=[embeds]), theirs)
    pipe.set_ip_adapter_scale(0.0)
    assert np.abs(pixels(pipe, ip_adapter_image=reference) - base).max() <= 1
    pipe.unload_ip_adapter()
    assert np.array_equal(pixels(pipe), base)


@pytest.mark.slow  # trains the tiny family
def test_the_converted_file_names_its_family(convert_tiny):
    files = convert_tiny('qwen_image')
    info = run_tool_in_process('convert.py', '--info', files['safetensors']).stdout
    assert 'family:          Qwen-Image (40-d image tokens)' in info, info
    assert 'layers:          2 adapter layers' in info, info
    assert 'diffengine_ipa.load_ip_adapter (QwenImagePipeline)' in info, info
    assert 'metadata family: QwenImage' in info, info
