"""Every config loads, is shallow, has a unique name, and builds with the
tiny family swapped in (those that test_every_config_runs.py trains are
built there)."""

import ast
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope

from diffengine_ipa.apis import build_embedding_cache
from diffengine_ipa.registry import DATASETS, MODELS

from .conftest import REPO, family_of, tiny_overrides
from .test_every_config_runs import NEEDS_LAUNCHER, RUN

CONFIG_ROOT = osp.join(REPO, 'configs')
LEAVES = sorted(glob.glob(osp.join(CONFIG_ROOT, 'ip_adapter', '*.py')))
ALL = sorted(glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True))
# The tiny leaves and the strategy leaves (which the every-config test skips);
# the shapes_ leaves are built in tests/shapes_world.
NOT_RUN = [
    p
    for p in LEAVES
    if (p not in RUN or p.endswith(NEEDS_LAUNCHER))
    and not osp.basename(p).startswith('shapes_')
]


def base_depth(path: str) -> int:
    """How many levels of ``_base_`` stand above a config file."""
    tree = ast.parse(open(path).read())
    bases = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, 'id', None) == '_base_' for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            bases = [value] if isinstance(value, str) else list(value)
    return max(
        (1 + base_depth(osp.join(osp.dirname(path), b)) for b in bases), default=0
    )


def test_names_unique_and_depth_at_most_two():
    names = [osp.basename(p) for p in ALL]
    assert len(names) == len(set(names))  # mim finds configs by file name
    assert LEAVES and all(base_depth(p) <= 2 for p in LEAVES)


@pytest.mark.parametrize('path', NOT_RUN, ids=osp.basename)
def test_config_builds_with_tiny_family(path, tiny_families, tmp_path):
    from diffengine_ipa.official_format import official_state_dict
    from diffengine_ipa.user_config import prepare_config

    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'diffengine_ipa'
    cfg.merge_from_dict(tiny_overrides(tiny_families[family_of(path)]))
    prepare_config(cfg, path)
    if cfg.model.get('pretrained_ip_adapter'):  # the *_finetune configs
        from safetensors.torch import save_file

        init_default_scope('diffengine_ipa')
        published = MODELS.build(dict(cfg.model, pretrained_ip_adapter=None))
        cfg.model.pretrained_ip_adapter = str(tmp_path / 'published.safetensors')
        save_file(official_state_dict(published), cfg.model.pretrained_ip_adapter)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.ann_file = osp.join(REPO, dataset_cfg.ann_file)
    if dataset_cfg.get('embedding_cache'):  # the *_fast configs
        dataset_cfg.embedding_cache = str(tmp_path / 'cache')
        build_embedding_cache(cfg, dataset_cfg.embedding_cache)
    dataset = DATASETS.build(dataset_cfg)
    sample = dataset[0]
    size = model.image_encoder.image_size
    assert (
        'image_features' in sample['inputs']
        if dataset_cfg.get('embedding_cache')
        else sample['inputs']['reference_pixel_values'].shape == (3, size, size)
    )
    if osp.basename(path).startswith('tiny_'):
        batch = model.data_preprocessor(default_collate([sample]), True)
        assert torch.isfinite(model(**batch)['loss'])


@pytest.mark.parametrize(
    'name, base, family, encoder, resolution',
    [
        (
            'sd15_mini_dataset',
            'stable-diffusion-v1-5/stable-diffusion-v1-5',
            'SD15',
            'openai/clip-vit-large-patch14',
            512,
        ),
        (
            'sdxl_mini_dataset',
            'stabilityai/stable-diffusion-xl-base-1.0',
            'SDXL',
            'h94/IP-Adapter',
            1024,
        ),
        (
            'sd15_mini_dataset_finetune',
            'stable-diffusion-v1-5/stable-diffusion-v1-5',
            'SD15',
            'h94/IP-Adapter',
            512,
        ),
        (
            'sd35_mini_dataset',
            'stabilityai/stable-diffusion-3.5-large',
            'SD3',
            'google/siglip-so400m-patch14-384',
            1024,
        ),
        (
            'flux_mini_dataset',
            'black-forest-labs/FLUX.1-dev',
            'Flux',
            'openai/clip-vit-large-patch14',
            1024,
        ),
        (
            'chroma_mini_dataset',
            'lodestones/Chroma1-HD',
            'Chroma',
            'openai/clip-vit-large-patch14',
            1024,
        ),
        (
            'qwen_image_mini_dataset',
            'Qwen/Qwen-Image',
            'QwenImage',
            'openai/clip-vit-large-patch14',
            1024,
        ),
        (
            'flux_kontext_mini_dataset',
            'black-forest-labs/FLUX.1-Kontext-dev',
            'FluxKontext',
            'openai/clip-vit-large-patch14',
            1024,
        ),
    ],
)
def test_real_configs_point_at_real_models(name, base, family, encoder, resolution):
    cfg = Config.fromfile(osp.join(CONFIG_ROOT, f'ip_adapter/{name}.py'))
    assert cfg.model.pretrained_model_name_or_path == base
    assert cfg.model.family.type == family
    assert cfg.model.image_encoder.pretrained_model_name_or_path == encoder
    assert cfg.train_dataloader.dataset.resolution == resolution
    assert cfg.train_cfg.max_epochs == 10 and cfg.train_dataloader.batch_size == 1
    lr = 1e-5 if name.endswith('finetune') else 1e-4
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=lr, weight_decay=0.01)
    assert cfg.default_hooks.checkpoint.interval == 5


def test_families_differ_by_the_model_base():
    """One model class; the family, its sources and its encoder come from the
    model base a leaf lists (and the dataset base sets the resolution)."""
    leaves = {
        name: Config.fromfile(
            osp.join(CONFIG_ROOT, f'ip_adapter/{name}_mini_dataset.py')
        )
        for name in ('sd15', 'sdxl', 'sd35', 'flux')
    }
    assert {cfg.model.type for cfg in leaves.values()} == {'IPAdapter'}
    assert [cfg.model.family.type for cfg in leaves.values()] == [
        'SD15',
        'SDXL',
        'SD3',
        'Flux',
    ]
    assert leaves['sdxl'].optim_wrapper == leaves['sd15'].optim_wrapper
    bases = {
        name: [
            line
            for line in open(
                osp.join(CONFIG_ROOT, f'ip_adapter/{name}_mini_dataset.py')
            )
            if '_base_/' in line
        ]
        for name in leaves
    }
    assert all(
        sum('models/' in line for line in lines) == 1 for lines in bases.values()
    )


def test_no_config_states_the_image_encoders_size():
    """Preprocessing comes from the encoder: no config says 224 (or any size
    for the reference), and loading fills in each PreprocessReference."""
    from diffengine_ipa.user_config import load_user_config

    for path in ALL:
        assert '224' not in open(path).read(), path
    cfg = load_user_config(osp.join(CONFIG_ROOT, 'ip_adapter/sd35_mini_dataset.py'))
    step = cfg.train_dataloader.dataset.pipeline[1]
    assert step.type == 'PreprocessReference'
    assert step.image_encoder == cfg.model.image_encoder


@pytest.mark.parametrize(
    'option, replacement',
    [
        ('model.image_encoder_path=/x', 'model.image_encoder=dict'),
        ('model.image_encoder_subfolder=y', 'model.image_encoder.subfolder'),
        ('model.prompt_encoder.type=SD15PromptEncoder', 'model.family=dict'),
        ('model.compile_unet=True', 'model.compile_denoiser'),
    ],
)
def test_old_fields_name_their_replacement(option, replacement):
    from mmengine.config import DictAction

    from diffengine_ipa.errors import UserError
    from diffengine_ipa.user_config import load_user_config

    key, value = option.split('=')
    options = {key: DictAction._parse_iterable(value)}
    with pytest.raises(
        UserError, match='was replaced by ' + replacement.replace('(', r'\(')
    ) as err:
        load_user_config(
            osp.join(CONFIG_ROOT, 'ip_adapter/sd15_mini_dataset.py'), options
        )
    assert '\n' not in str(err.value)


def test_shipped_configs_use_only_known_top_level_keys():
    from diffengine_ipa.user_config import check_top_level_keys

    for path in glob.glob(osp.join(REPO, 'configs/ip_adapter/*.py')):
        check_top_level_keys(Config.fromfile(path), path)


def test_resolution_is_one_knob(tiny_family):
    """The tiny leaves change the resolution with one value: every resize
    and crop of the (shared) pipeline follows it."""
    from diffengine_ipa.user_config import load_user_config

    tiny = Config.fromfile(
        osp.join(CONFIG_ROOT, 'ip_adapter/tiny_sd15_mini_dataset.py')
    )
    real = Config.fromfile(osp.join(CONFIG_ROOT, 'ip_adapter/sd15_mini_dataset.py'))
    assert (
        tiny.train_dataloader.dataset.pipeline == real.train_dataloader.dataset.pipeline
    )
    cfg = load_user_config(
        osp.join(CONFIG_ROOT, 'ip_adapter/tiny_sd15_mini_dataset.py'),
        dict(
            tiny_overrides(tiny_family), **{'train_dataloader.dataset.resolution': 48}
        ),
    )
    init_default_scope('diffengine_ipa')
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.ann_file = osp.join(REPO, dataset_cfg.ann_file)
    sample = DATASETS.build(dataset_cfg)[0]
    assert sample['inputs']['pixel_values'].shape == (3, 48, 48)


def test_validate_false_turns_validation_and_samples_off():
    from diffengine_ipa.user_config import load_user_config

    path = osp.join(CONFIG_ROOT, 'ip_adapter/sd15_mini_dataset.py')
    on = load_user_config(path)
    assert on.validate is True and on.val_dataloader is not None
    off = load_user_config(path, dict(validate=False))
    assert off.val_dataloader is None and off.val_cfg is None
    assert off.val_evaluator is None and off.test_dataloader is not None
    assert [h.type for h in off.custom_hooks] == [
        h.type for h in on.custom_hooks if h.type != 'IPAdapterVisualizationHook'
    ]


def test_fast_config_chooses_for_the_machine():
    """The *_fast config asks for every hardware setting (no hard-coded
    bf16): on a CPU without native bf16 it trains in fp32."""
    from diffengine_ipa.engine import hardware
    from diffengine_ipa.user_config import load_user_config

    cfg = load_user_config(
        osp.join(CONFIG_ROOT, 'ip_adapter/sd15_mini_dataset_fast.py')
    )
    assert cfg.hardware == {name: 'auto' for name in hardware.SETTINGS}
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.model.get('frozen_dtype') is None
    caps = hardware.Capabilities('cpu', 'x', cpu_flags=frozenset({'avx2'}))
    decisions = hardware.decide(caps, cfg.hardware)
    hardware.apply_to_config(cfg, decisions, caps)
    assert cfg.optim_wrapper.type == 'OptimWrapper' and cfg.model.channels_last
    h100 = hardware.Capabilities('cuda', 'H100', (9, 0), cpu_cores=16)
    hardware.apply_to_config(cfg, hardware.decide(h100, cfg.hardware), h100)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert cfg.model.frozen_dtype == 'bf16'


def test_tiny_configs_work_from_any_directory(tmp_path, monkeypatch):
    """The repo-relative inputs of a shipped config (data/, the tiny
    models once written) are found from another working directory."""
    from diffengine_ipa.user_config import load_user_config

    monkeypatch.chdir(tmp_path)
    cfg = load_user_config(
        osp.join(CONFIG_ROOT, 'ip_adapter/tiny_sd15_mini_dataset.py')
    )
    assert cfg.train_dataloader.dataset.ann_file == osp.join(
        REPO, 'data/mini_dataset/data.json'
    )
    assert cfg.val_dataloader.dataset.data_root == osp.join(REPO, 'data')
    (tmp_path / 'data').mkdir()  # a folder of that name here wins
    cfg = load_user_config(
        osp.join(CONFIG_ROOT, 'ip_adapter/tiny_sd15_mini_dataset.py')
    )
    assert cfg.val_dataloader.dataset.data_root == 'data'
