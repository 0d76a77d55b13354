"""Starting from published adapters and the official scripts' checkpoints.

The official-layout and tutorial-layout files are made here by code of their
own (key names written out, numbering from a diffusers UNet's
attn_processors), not by the kit's export.
"""

import os.path as osp

import pytest
import torch
from diffusers import UNet2DConditionModel
from mmengine.runner import Runner
from safetensors.torch import load_file, save_file

from diffengine_ipa.errors import CheckpointError, ModelSourceError

from ..conftest import (
    TINY_CONFIGS,
    build_tiny_model,
    family_of,
    load_tiny_config,
    tiny_overrides,
)
from .diffusers_side import denoiser_outputs, diffusers_pipeline
from .helpers import one_line_error, run_tool_here
from .published_files import cross_attention, official_file

VARIANTS = tuple(TINY_CONFIGS)


@pytest.mark.slow
@pytest.mark.parametrize(
    'variant, dtype',
    [
        ('sd15', torch.float16),
        ('sdxl', torch.float32),
        ('sd15_plus', torch.float32),
        ('sdxl_plus', torch.float16),
        ('sd3', torch.bfloat16),
        ('flux', torch.bfloat16),
        ('flux', torch.float32),
    ],
)
def test_round_trip_is_bit_identical(tiny_families, tmp_path, variant, dtype):
    """published file → pretrained_ip_adapter → training at lr 0 → convert:
    the same names (XLabs' own for FLUX), shapes, dtype and bits."""
    source = tmp_path / 'published.safetensors'
    original = official_file(tiny_families, variant, source, dtype)
    cfg = load_tiny_config(
        tiny_families[family_of(variant)],
        tmp_path / 'run',
        TINY_CONFIGS[variant],
        **{
            'model.pretrained_ip_adapter': str(source),
            'optim_wrapper.optimizer.lr': 0.0,
            'train_cfg.max_epochs': 1,
        },
    )
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    Runner.from_cfg(cfg).train()
    out = tmp_path / 'back.safetensors'
    name = {torch.float16: 'fp16', torch.float32: 'fp32', torch.bfloat16: 'bf16'}[dtype]
    run_tool_here(
        'convert.py', tmp_path / 'run/iter_5.pth', '--out', out, '--dtype', name
    )
    back = load_file(str(out))
    assert set(back) == set(original)
    for key, value in original.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        assert torch.equal(back[key], value), key


@pytest.mark.parametrize('variant', VARIANTS)
def test_imported_adapter_equals_diffusers(tiny_families, tmp_path, variant):
    """A published file in our model and in diffusers: the same prediction."""
    source = tmp_path / 'published.safetensors'
    official_file(tiny_families, variant, source)
    folders = tiny_families[family_of(variant)]
    model = build_tiny_model(tiny_families, variant).eval()
    model.load_pretrained_ip_adapter(str(source))
    pipe = diffusers_pipeline(variant, folders, str(source))
    side = model.image_encoder.image_size
    torch.manual_seed(1)
    features = model.image_encoder(
        torch.randn(2, 3, side, side), model.image_projection.image_features
    )
    ours, theirs = denoiser_outputs(model, pipe, family_of(variant), features)
    assert (ours - theirs).abs().max() <= 1e-5


def tutorial_checkpoint(tiny_family, folder):
    """What tutorial_train.py leaves: the whole UNet with its IP processors,
    image_proj_model.*, and adapter_modules.<i>.* aliases."""
    unet = UNet2DConditionModel.from_pretrained(tiny_family['base'], subfolder='unet')
    cross = unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(1)
    state = {f'unet.{k}': v for k, v in unet.state_dict().items()}
    state.update(
        {
            'image_proj_model.proj.weight': torch.randn(
                4 * cross, 16, generator=generator
            ),
            'image_proj_model.proj.bias': torch.randn(4 * cross, generator=generator),
            'image_proj_model.norm.weight': torch.ones(cross),
            'image_proj_model.norm.bias': torch.zeros(cross),
        }
    )
    expected = {
        k.replace('image_proj_model.', 'image_proj.'): v
        for k, v in state.items()
        if k.startswith('image_proj_model.')
    }
    names = list(unet.attn_processors)
    for index, width in cross_attention(unet):
        for kind in ('to_k_ip', 'to_v_ip'):
            weight = torch.randn(width, cross, generator=generator)
            state[f'unet.{names[index]}.{kind}.weight'] = weight
            state[f'adapter_modules.{index}.{kind}.weight'] = weight
            expected[f'ip_adapter.{index}.{kind}.weight'] = weight
    folder.mkdir()
    torch.save(state, folder / 'pytorch_model.bin')
    return state, expected


def accelerate_checkpoint(state: dict, folder) -> None:
    """The same checkpoint as accelerate saves it: ``model.safetensors``,
    without the ``adapter_modules.*`` aliases."""
    folder.mkdir()
    save_file(
        {
            k: v.contiguous()
            for k, v in state.items()
            if not k.startswith('adapter_modules.')
        },
        str(folder / 'model.safetensors'),
    )


def test_official_script_checkpoints_convert(tiny_family, tmp_path):
    state, expected = tutorial_checkpoint(tiny_family, tmp_path / 'checkpoint-5')
    run_tool_here(
        'convert.py',
        tmp_path / 'checkpoint-5',
        '--out',
        tmp_path / 'from_bin.safetensors',
    )
    # Saved as safetensors, the adapter_modules.* aliases are gone.
    accelerate_checkpoint(state, tmp_path / 'checkpoint-9')
    # Without the UNet's own weights, the layer order is unknown.
    (tmp_path / 'adapter_only').mkdir()
    save_file(
        {
            k: v.contiguous()
            for k, v in state.items()
            if k.startswith('image_proj_model.')
            or (k.startswith('unet.') and '_ip.' in k)
        },
        str(tmp_path / 'adapter_only/model.safetensors'),
    )
    error = one_line_error(
        run_tool_here('convert.py', tmp_path / 'adapter_only', check=False)
    )
    assert 'adapter_modules' in error and '--config' in error
    config = tmp_path / 'tiny.py'
    config.write_text(
        f"_base_ = ['{TINY_CONFIGS['sd15']}']\nmodel = dict("
        f"pretrained_model_name_or_path='{tiny_family['base']}')\n"
    )
    run_tool_here(
        'convert.py',
        tmp_path / 'checkpoint-9',
        '--config',
        config,
        '--out',
        tmp_path / 'from_safetensors.safetensors',
    )
    for name in ('from_bin', 'from_safetensors'):
        converted = load_file(str(tmp_path / f'{name}.safetensors'))
        assert set(converted) == set(expected)
        assert all(torch.equal(converted[k], v) for k, v in expected.items())


def test_accelerate_safetensors_convert_with_no_flags(tiny_families, tmp_path):
    """tutorial_train.py's model.safetensors (no adapter_modules.* aliases):
    the layers are numbered from the UNet names the file holds, and diffusers
    loads the result into the right processors."""
    state, expected = tutorial_checkpoint(tiny_families['sd15'], tmp_path / 'bin')
    accelerate_checkpoint(state, tmp_path / 'checkpoint-9')
    out = tmp_path / 'ip_adapter.safetensors'
    run_tool_here('convert.py', tmp_path / 'checkpoint-9', '--out', out)
    converted = load_file(str(out))
    assert set(converted) == set(expected)
    assert all(torch.equal(converted[k], v) for k, v in expected.items())
    pipe = diffusers_pipeline('sd15', tiny_families['sd15'], str(out))
    names = list(pipe.unet.attn_processors)
    for index, processor in enumerate(pipe.unet.attn_processors.values()):
        if index % 2:  # the cross-attention layers
            assert torch.equal(
                processor.to_k_ip[0].weight,
                state[f'unet.{names[index]}.to_k_ip.weight'],
            )


@pytest.mark.parametrize('family', ['sd15', 'sdxl'])
def test_layer_order_from_names_is_the_unets(tiny_families, family):
    from diffengine_ipa.official_format.conversion import processor_order

    unet = UNet2DConditionModel.from_pretrained(
        tiny_families[family]['base'], subfolder='unet'
    )
    contents = {f'unet.{k}': v for k, v in unet.state_dict().items()}
    assert processor_order(contents) == list(unet.attn_processors)
    assert processor_order({'image_proj_model.proj.weight': None}) is None


@pytest.mark.parametrize(
    'variant, lines',
    [
        (
            'sdxl_plus',
            (
                "layout:          ip-adapter, loaded by diffusers' IPAdapterMixin",
                'variant:         plus (Resampler)',
                'layers:          8 adapter layers',
                'image tokens:    16',
                '32-d hidden states',
                'dtype:           float16',
            ),
        ),
        (
            'sd3',
            (
                "layout:          instantx-sd3, loaded by diffusers' SD3IPAdapterMixin",
                'variant:         time-resampler',
                'layers:          2 adapter layers',
                'image tokens:    16',
                'family:          unknown (32-d image tokens)',
            ),
        ),
        (
            'flux',
            (
                "layout:          xlabs-flux, loaded by diffusers' FluxIPAdapterMixin",
                'variant:         base (linear projection)',
                'layers:          2 adapter layers',
                'image tokens:    4',
                '16-d pooled image embeddings',
            ),
        ),
    ],
)
def test_info_describes_any_official_file(tiny_families, tmp_path, variant, lines):
    path = tmp_path / 'published.safetensors'
    official_file(tiny_families, variant, path, torch.float16)
    out = run_tool_here('convert.py', '--info', path).stdout
    assert all(line in out for line in lines), out


@pytest.mark.parametrize(
    'file_variant, config_variant, message',
    [
        (
            'sd15_plus',
            'sd15',
            'an IP-Adapter plus file, but the config builds a '
            'base adapter: use a *_plus config',
        ),
        (
            'sd15',
            'sd15_plus',
            'an IP-Adapter base file, but the config builds a plus adapter',
        ),
        (
            'sdxl',
            'sd15',
            'trained for a 64-d cross-attention (unknown) but the '
            'configured base model has 32',
        ),
        ('sd3', 'flux', 'an adapter in the instantx-sd3 layout'),
        ('flux', 'sd3', 'an adapter in the xlabs-flux layout'),
    ],
)
def test_wrong_files_are_one_line(
    tiny_families, tmp_path, file_variant, config_variant, message
):
    path = tmp_path / 'published.safetensors'
    official_file(tiny_families, file_variant, path)
    model = build_tiny_model(tiny_families, config_variant)
    with pytest.raises(
        CheckpointError,
        match=message.replace('*', r'\*').replace('(', r'\(').replace(')', r'\)'),
    ):
        model.load_pretrained_ip_adapter(str(path))


def test_wrong_file_stops_training_with_one_line(tiny_families, tmp_path):
    path = tmp_path / 'published.safetensors'
    official_file(tiny_families, 'sdxl', path)
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_families['sd15']).items()]
    error = one_line_error(
        run_tool_here(
            'train.py',
            TINY_CONFIGS['sd15'],
            '--work-dir',
            tmp_path / 'run',
            '--cfg-options',
            *options,
            f'model.pretrained_ip_adapter={path}',
            check=False,
        )
    )
    assert str(path) in error and 'configured base model has 32' in error


def test_encoder_width_mismatch_at_inference(tiny_families, tmp_path):
    path = tmp_path / 'published.safetensors'
    state = official_file(tiny_families, 'sd15', path)
    state['image_proj.proj.weight'] = torch.randn(4 * 32, 24)  # a 24-d encoder
    save_file(state, str(path))
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_families['sd15']).items()]
    error = one_line_error(
        run_tool_here(
            'infer.py',
            TINY_CONFIGS['sd15'],
            path,
            '--image',
            osp.join(
                osp.dirname(TINY_CONFIGS['sd15']),
                '../../data/mini_dataset/images/cat.jpg',
            ),
            '--cfg-options',
            *options,
            check=False,
        )
    )
    assert 'expects 24-d image embeddings' in error and 'gives 16' in error


def test_hub_file_offline_says_what_to_do(tiny_families):
    model = build_tiny_model(tiny_families, 'sd15')
    with pytest.raises(ModelSourceError, match='HF_HUB_OFFLINE=1.*hf download'):
        model.load_pretrained_ip_adapter(
            'h94/IP-Adapter/models/ip-adapter_sd15.safetensors'
        )
