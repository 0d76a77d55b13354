"""Every config loads, is shallow, has a unique name, and builds with the
tiny family swapped in."""
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

from .conftest import REPO, tiny_overrides

CONFIG_ROOT = osp.join(REPO, 'configs')
LEAVES = sorted(glob.glob(osp.join(CONFIG_ROOT, 'ip_adapter', '*.py')))
ALL = sorted(glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True))


def base_depth(path: str) -> int:
    """How many levels of ``_base_`` stand above a config file."""
    tree = ast.parse(open(path).read())
    bases = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            bases = [value] if isinstance(value, str) else list(value)
    return max((1 + base_depth(osp.join(osp.dirname(path), b))
                for b in bases), default=0)


def test_names_unique_and_depth_at_most_two():
    names = [osp.basename(p) for p in ALL]
    assert len(names) == len(set(names))  # mim finds configs by file name
    assert LEAVES and all(base_depth(p) <= 2 for p in LEAVES)


@pytest.mark.parametrize('path', LEAVES, ids=osp.basename)
def test_config_builds_with_tiny_family(path, tiny_families, tmp_path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'diffengine_ipa'
    family = 'sdxl' if 'sdxl' in osp.basename(path) else 'sd15'
    cfg.merge_from_dict(tiny_overrides(tiny_families[family]))
    if cfg.model.get('pretrained_ip_adapter'):  # the *_finetune configs
        from safetensors.torch import save_file
        init_default_scope('diffengine_ipa')
        published = MODELS.build(dict(cfg.model, pretrained_ip_adapter=None))
        cfg.model.pretrained_ip_adapter = str(tmp_path / 'published.safetensors')
        save_file(published.official_state_dict(), cfg.model.pretrained_ip_adapter)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.ann_file = osp.join(REPO, dataset_cfg.ann_file)
    if dataset_cfg.get('embedding_cache'):  # the *_fast configs
        dataset_cfg.embedding_cache = str(tmp_path / 'cache')
        build_embedding_cache(cfg, dataset_cfg.embedding_cache)
    dataset = DATASETS.build(dataset_cfg)
    sample = dataset[0]
    assert ('image_features' in sample['inputs'] if dataset_cfg.get(
        'embedding_cache') else sample['inputs']['clip_pixel_values'].shape
            == (3, 224, 224))
    if osp.basename(path).startswith('tiny_'):
        batch = model.data_preprocessor(default_collate([sample]), True)
        assert torch.isfinite(model(**batch)['loss'])


@pytest.mark.parametrize('name, base, encoder, resolution', [
    ('sd15_mini_dataset', 'stable-diffusion-v1-5/stable-diffusion-v1-5',
     'openai/clip-vit-large-patch14', 512),
    ('sdxl_mini_dataset', 'stabilityai/stable-diffusion-xl-base-1.0',
     'h94/IP-Adapter', 1024),
    ('sd15_mini_dataset_finetune', 'stable-diffusion-v1-5/stable-diffusion-v1-5',
     'h94/IP-Adapter', 512),
])
def test_real_configs_point_at_real_models(name, base, encoder, resolution):
    cfg = Config.fromfile(osp.join(CONFIG_ROOT, f'ip_adapter/{name}.py'))
    assert cfg.model.pretrained_model_name_or_path == base
    assert cfg.model.image_encoder_path == encoder
    crop = next(t for t in cfg.train_dataloader.dataset.pipeline
                if t.type == 'CenterCrop')
    assert crop.size == resolution
    assert cfg.train_cfg.max_epochs == 10 and cfg.train_dataloader.batch_size == 1
    lr = 1e-5 if name.endswith('finetune') else 1e-4
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=lr,
                                               weight_decay=0.01)
    assert cfg.default_hooks.checkpoint.interval == 5


def test_sdxl_differs_from_sd15_by_components_only():
    sd15 = Config.fromfile(osp.join(CONFIG_ROOT, 'ip_adapter/sd15_mini_dataset.py'))
    sdxl = Config.fromfile(osp.join(CONFIG_ROOT, 'ip_adapter/sdxl_mini_dataset.py'))
    assert sd15.model.type == sdxl.model.type == 'IPAdapter'
    assert sd15.model.prompt_encoder.type == 'SD15PromptEncoder'
    assert sdxl.model.prompt_encoder.type == 'SDXLPromptEncoder'
    assert sdxl.optim_wrapper == sd15.optim_wrapper


def test_shipped_configs_use_only_known_top_level_keys():
    from diffengine_ipa.user_config import check_top_level_keys
    for path in glob.glob(osp.join(REPO, 'configs/ip_adapter/*.py')):
        check_top_level_keys(Config.fromfile(path), path)
