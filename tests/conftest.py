"""Shared fixtures: everything offline, tiny, seeded.

The tiny family is written once per session to a temporary folder and loaded
through the real ``from_pretrained`` code, as the tiny demo does.
"""
import os

os.environ['HF_HUB_OFFLINE'] = '1'  # before any Hugging Face import
os.environ['TRANSFORMERS_OFFLINE'] = '1'
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
if 'DIFFENGINE_IPA_CACHE' not in os.environ:  # dataset indexes: not ~/.cache
    import atexit
    import shutil
    import tempfile
    os.environ['DIFFENGINE_IPA_CACHE'] = tempfile.mkdtemp(
        prefix='diffengine_ipa_test_cache_')
    atexit.register(shutil.rmtree, os.environ['DIFFENGINE_IPA_CACHE'], True)

import os.path as osp  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402
from mmengine.config import Config  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FAMILIES = ('sd15', 'sdxl', 'sd3', 'flux')
# The tiny configs by variant: each family, and Plus for SD1.5 and SDXL.
TINY_CONFIGS = dict(
    sd15='tiny_sd15_mini_dataset.py',
    sdxl='tiny_sdxl_mini_dataset.py',
    sd15_plus='tiny_sd15_mini_dataset_plus.py',
    sdxl_plus='tiny_sdxl_mini_dataset_plus.py',
    sd3='tiny_sd35_mini_dataset.py',
    flux='tiny_flux_mini_dataset.py')
TINY_CONFIGS = {name: osp.join(REPO, 'configs/ip_adapter', file)
                for name, file in TINY_CONFIGS.items()}
TINY_CONFIG = TINY_CONFIGS['sd15']


def pytest_configure(config) -> None:
    """The tools' console settings: third-party noise filtered, MMEngine's
    config formatted once per text."""
    from diffengine_ipa.console import memoize_config_formatting, quiet_third_party
    quiet_third_party()
    memoize_config_formatting()


def pytest_collection_modifyitems(config, items) -> None:
    """Skip the ``cuda``-marked tests where there is no CUDA GPU."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (benchmarks/gpu/run.sh)')
    for item in items:
        if item.get_closest_marker('cuda') is not None:
            item.add_marker(skip)


def family_of(variant: str) -> str:
    """'sd15', 'sdxl', 'sd3' or 'flux' for a variant name or config path."""
    name = osp.basename(variant)
    for family in ('sdxl', 'sd3', 'flux'):
        if family in name:
            return family
    return 'sd15'


@pytest.fixture(scope='session')
def tiny_families(tmp_path_factory) -> dict:
    """``{family: {'base': folder, 'image_encoder': folder, 'judge': folder}}``:
    the tiny families, written once and loaded through ``from_pretrained``."""
    from diffengine_ipa.models.model_sources import disable_progress_bars
    from diffengine_ipa.testing import write_base_model, write_clip_judge
    disable_progress_bars()
    out = str(tmp_path_factory.mktemp('tiny_models'))
    judge = write_clip_judge('tiny_clip', out)
    families = {}
    for name in FAMILIES:
        base, encoder = write_base_model(f'tiny_{name}', out)
        families[name] = dict(base=base, image_encoder=encoder, judge=judge)
    return families


@pytest.fixture(scope='session')
def tiny_family(tiny_families) -> dict:
    """The tiny SD1.5 family."""
    return tiny_families['sd15']


def tiny_overrides(tiny_family: dict) -> dict:
    """``--cfg-options`` that point a config at a tiny family, its CLIP
    judge and the repo's data (from any working directory)."""
    data = osp.join(REPO, 'data')
    return {
        'model.pretrained_model_name_or_path': tiny_family['base'],
        'model.image_encoder.pretrained_model_name_or_path':
        tiny_family['image_encoder'],
        'model.image_encoder.subfolder': None,
        'val_evaluator.clip_model': tiny_family['judge'],
        'test_evaluator.clip_model': tiny_family['judge'],
        'val_dataloader.dataset.data_root': data,
        'test_dataloader.dataset.data_root': data,
    }


def load_tiny_config(tiny_family: dict, work_dir: str,
                     config: str = TINY_CONFIG, **options) -> Config:
    """A tiny config with the session's tiny family and the repo's data,
    checked and linked as the tools load configs."""
    from diffengine_ipa.user_config import prepare_config
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(tiny_overrides(tiny_family))
    cfg.train_dataloader.dataset.ann_file = osp.join(
        REPO, 'data/mini_dataset/data.json')
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'
    cfg.merge_from_dict(options)
    return prepare_config(cfg, config)


@pytest.fixture
def tiny_config(tiny_family, tmp_path) -> Config:
    return load_tiny_config(tiny_family, tmp_path / 'work_dir')


@pytest.fixture(scope='session')
def train_tiny(tiny_families, tmp_path_factory):
    """``train_tiny(variant)``: a work dir after 2 epochs (10 iterations) of
    that variant's tiny config, trained once per session."""
    from mmengine.runner import Runner
    work_dirs = {}

    def train(variant: str) -> str:
        if variant not in work_dirs:
            work_dir = tmp_path_factory.mktemp(f'trained_{variant}')
            cfg = load_tiny_config(tiny_families[family_of(variant)], work_dir,
                                   TINY_CONFIGS[variant],
                                   **{'train_cfg.max_epochs': 2})
            Runner.from_cfg(cfg).train()
            work_dirs[variant] = str(work_dir)
        return work_dirs[variant]

    return train


@pytest.fixture(scope='session')
def convert_tiny(train_tiny):
    """``convert_tiny(variant)``: that variant's trained work dir converted
    with tools/convert.py to both official formats (once per session)."""
    from .tools.helpers import run_tool
    results = {}

    def convert(variant: str) -> dict:
        if variant not in results:
            work_dir = train_tiny(variant)
            run_tool('convert.py', work_dir)  # default: its last checkpoint
            run_tool('convert.py', osp.join(work_dir, 'iter_10.pth'),
                     '--format', 'bin')
            results[variant] = dict(
                safetensors=osp.join(work_dir, 'ip_adapter.safetensors'),
                bin=osp.join(work_dir, 'ip_adapter.bin'),
                checkpoint=osp.join(work_dir, 'iter_10.pth'))
        return results[variant]

    return convert


@pytest.fixture(scope='session')
def converted(convert_tiny) -> dict:
    """The tiny SD1.5 run, converted."""
    return convert_tiny('sd15')


@pytest.fixture(scope='session')
def trained_work_dir(train_tiny) -> str:
    """The tiny SD1.5 work dir after 10 iterations."""
    return train_tiny('sd15')


def build_tiny_model(tiny_families: dict, variant: str):
    """The model of a variant's tiny config, on the session's tiny family."""
    from mmengine.registry import init_default_scope

    from diffengine_ipa.registry import MODELS
    cfg = Config.fromfile(TINY_CONFIGS[variant])
    cfg.merge_from_dict(tiny_overrides(tiny_families[family_of(variant)]))
    init_default_scope('diffengine_ipa')
    return MODELS.build(cfg.model)


@pytest.fixture
def tiny_model(tiny_family):
    """A freshly loaded tiny SD1.5 IPAdapter."""
    from diffengine_ipa.models import IPAdapter
    return IPAdapter(tiny_family['base'], tiny_family['image_encoder'])
