"""Shared fixtures: everything offline, tiny, seeded.

The tiny family is written once per test run to a temporary folder and loaded
through the real ``from_pretrained`` code, as the tiny demo does. Under
pytest-xdist (``tools/run_tests.sh`` runs ``-n logical``) the session-wide
builds (tiny models, trained and converted work dirs, the pip install) are
made once for all workers (:func:`build_once`), and each worker computes with
its share of the cores.
"""

import os

XDIST_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
IN_XDIST_WORKER = False  # set in pytest_configure
if XDIST_WORKERS > 1:  # before torch is imported; tools run by tests inherit it
    _cores = (
        len(os.sched_getaffinity(0))
        if hasattr(os, 'sched_getaffinity')
        else os.cpu_count() or 1
    )
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, _cores // XDIST_WORKERS)))
os.environ['HF_HUB_OFFLINE'] = '1'  # before any Hugging Face import
os.environ['TRANSFORMERS_OFFLINE'] = '1'
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
if 'DIFFENGINE_IPA_CACHE' not in os.environ:  # dataset indexes: not ~/.cache
    import atexit
    import shutil
    import tempfile

    os.environ['DIFFENGINE_IPA_CACHE'] = tempfile.mkdtemp(
        prefix='diffengine_ipa_test_cache_'
    )
    atexit.register(shutil.rmtree, os.environ['DIFFENGINE_IPA_CACHE'], True)

import json  # noqa: E402
import os.path as osp  # noqa: E402
import uuid  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402
from mmengine.config import Config  # noqa: E402

from diffengine_ipa.models.families import FAMILIES as FAMILY_REGISTRY  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The families, from the registry: the first is a config's default.
FAMILIES = tuple(FAMILY_REGISTRY)


def _tiny_configs() -> dict[str, str]:
    """The tiny configs by variant: each family's, and its Plus config
    (``<tiny config>_plus.py``) where there is one."""
    folder = osp.join(REPO, 'configs/ip_adapter')
    configs = {}
    for name, entry in FAMILY_REGISTRY.items():
        configs[name] = osp.join(folder, entry.tiny_config)
        plus = configs[name].replace('.py', '_plus.py')
        if osp.isfile(plus):
            configs[f'{name}_plus'] = plus
    return configs


TINY_CONFIGS = _tiny_configs()
TINY_CONFIG = TINY_CONFIGS[FAMILIES[0]]


def pytest_configure(config) -> None:
    """The tools' console settings: third-party noise filtered, MMEngine's
    config formatted once per text."""
    from diffengine_ipa.console import memoize_config_formatting, quiet_third_party

    quiet_third_party()
    memoize_config_formatting()
    global IN_XDIST_WORKER
    # Not the environment: a pytest that a test starts inherits it.
    IN_XDIST_WORKER = hasattr(config, 'workerinput')
    if IN_XDIST_WORKER and XDIST_WORKERS > 1:
        import torch

        torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))


def pytest_addoption(parser) -> None:
    parser.addini(
        'end_to_end',
        type='linelist',
        default=[],
        help='the tests allowed to take over 60 s (run first)',
    )


def pytest_collection_modifyitems(config, items) -> None:
    """Skip the ``cuda``-marked tests where there is no CUDA GPU; mark the
    end-to-end tests that pyproject.toml names and run them first, so that
    no long test starts last on an otherwise idle worker."""
    end_to_end = set(config.getini('end_to_end'))
    for item in items:
        if item.nodeid.split('[')[0] in end_to_end:
            item.add_marker(pytest.mark.end_to_end)
    items.sort(key=lambda item: item.get_closest_marker('end_to_end') is None)
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (benchmarks/gpu/run.sh)')
    for item in items:
        if item.get_closest_marker('cuda') is not None:
            item.add_marker(skip)


LONG_TEST_S = 60


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Name the tests over 60 s that pyproject.toml does not list as end to
    end: each wants a shared fixture or an in-process call."""
    end_to_end = set(config.getini('end_to_end'))
    long = sorted(
        {
            (report.duration, report.nodeid)
            for report in terminalreporter.stats.get('passed', [])
            + terminalreporter.stats.get('failed', [])
            if report.when == 'call'
            and report.duration > LONG_TEST_S
            and report.nodeid.split('[')[0] not in end_to_end
        },
        reverse=True,
    )
    if long:
        terminalreporter.section(
            f'tests over {LONG_TEST_S} s that are not end_to_end (pyproject.toml)'
        )
        for duration, nodeid in long:
            terminalreporter.line(f'{duration:7.1f} s  {nodeid}')


def build_once(tmp_path_factory, name: str, build: Callable[[str], object]):
    """``build(folder)`` once per test run, its JSON result shared by every
    xdist worker: the first to ask builds under a file lock in the run's
    shared temporary folder, the others wait and read what it returned.

    Args:
        tmp_path_factory: pytest's session-wide factory.
        name: what is built (a folder name, unique in the run).
        build: makes the thing in the folder it is given; returns a
            JSON-serialisable description (paths).
    """
    if not IN_XDIST_WORKER:
        return build(str(tmp_path_factory.mktemp(name)))
    root = tmp_path_factory.getbasetemp().parent  # shared by the run's workers
    done = root / f'{name}.json'
    with FileLock(str(root / f'{name}.lock')):
        if not done.is_file():
            folder = root / name
            folder.mkdir(exist_ok=True)
            done.write_text(json.dumps(build(str(folder))))
        return json.loads(done.read_text())


def repo_build_lock(tmp_path_factory) -> FileLock:
    """Held while a test pip-installs this checkout: a build rewrites
    ``diffengine_ipa/.mim`` and ``build/`` in the checkout, so two at once
    (two xdist workers) would break each other."""
    root = tmp_path_factory.getbasetemp()
    if IN_XDIST_WORKER:
        root = root.parent
    return FileLock(str(root / 'repo_build.lock'))


def family_of(variant: str) -> str:
    """The family ('sd15', 'sdxl', ...) of a variant name or config path:
    the longest name it contains ('flux_kontext' before 'flux'), else the
    default."""
    name = osp.basename(variant)
    found = [family for family in FAMILIES[1:] if family in name]
    return max(found, key=len) if found else FAMILIES[0]


@pytest.fixture(scope='session')
def tiny_families(tmp_path_factory) -> dict:
    """``{family: {'base': folder, 'image_encoder': folder, 'judge': folder}}``:
    the tiny families, written once and loaded through ``from_pretrained``."""
    from diffengine_ipa.models.model_sources import disable_progress_bars

    disable_progress_bars()

    def write(out: str) -> dict:
        from diffengine_ipa.models.random_models import (
            write_base_model,
            write_clip_judge,
        )

        judge = write_clip_judge('tiny_clip', out)
        families = {}
        for name, entry in FAMILY_REGISTRY.items():
            base, encoder = write_base_model(entry.tiny_architecture, out)
            families[name] = dict(base=base, image_encoder=encoder, judge=judge)
        return families

    return build_once(tmp_path_factory, 'tiny_models', write)


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
        'model.image_encoder.pretrained_model_name_or_path': tiny_family[
            'image_encoder'
        ],
        'model.image_encoder.subfolder': None,
        'val_evaluator.clip_model': tiny_family['judge'],
        'test_evaluator.clip_model': tiny_family['judge'],
        'val_dataloader.dataset.data_root': data,
        'test_dataloader.dataset.data_root': data,
    }


def load_tiny_config(
    tiny_family: dict, work_dir: str, config: str = TINY_CONFIG, **options
) -> Config:
    """A tiny config with the session's tiny family and the repo's data,
    checked and linked as the tools load configs."""
    from diffengine_ipa.user_config import prepare_config

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(tiny_overrides(tiny_family))
    cfg.train_dataloader.dataset.ann_file = osp.join(  # the config's own data
        REPO, cfg.train_dataloader.dataset.ann_file
    )
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

    def run(work_dir: str, variant: str) -> str:
        cfg = load_tiny_config(
            tiny_families[family_of(variant)],
            work_dir,
            TINY_CONFIGS[variant],
            **{'train_cfg.max_epochs': 2},
        )
        Runner.from_cfg(cfg).train()
        return work_dir

    def train(variant: str) -> str:
        if variant not in work_dirs:
            work_dirs[variant] = build_once(
                tmp_path_factory,
                f'trained_{variant}',
                lambda work_dir: run(work_dir, variant),
            )
        return work_dirs[variant]

    return train


@pytest.fixture(scope='session')
def convert_tiny(train_tiny, tmp_path_factory):
    """``convert_tiny(variant)``: that variant's trained work dir converted
    with tools/convert.py to both official formats (once per run; in this
    process: tests/tools/test_convert.py runs the tool as a process)."""
    from .tools.helpers import run_tool_in_process

    results = {}

    def run(work_dir: str) -> dict:
        for args in (
            [work_dir],  # default: its last checkpoint
            [osp.join(work_dir, 'iter_10.pth'), '--format', 'bin'],
        ):
            result = run_tool_in_process('convert.py', *args)
            assert result.returncode == 0, result.stdout + result.stderr
        return dict(
            safetensors=osp.join(work_dir, 'ip_adapter.safetensors'),
            bin=osp.join(work_dir, 'ip_adapter.bin'),
            checkpoint=osp.join(work_dir, 'iter_10.pth'),
        )

    def convert(variant: str) -> dict:
        if variant not in results:
            work_dir = train_tiny(variant)
            results[variant] = build_once(
                tmp_path_factory, f'converted_{variant}', lambda _: run(work_dir)
            )
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
