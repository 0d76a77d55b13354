"""Training from the command line: tools/train.py and, after a real
``pip install``, ``mim train diffengine_ipa CONFIG``."""

import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from benchmarks.install import install_checkout
from diffengine_ipa.console import is_noise

from ..conftest import (
    REPO,
    TINY_CONFIG,
    TINY_CONFIGS,
    build_once,
    repo_build_lock,
    tiny_overrides,
)
from .helpers import one_line_error, run_tool, run_tool_here

# What one epoch of the tiny config prints: hardware settings (4), the
# checkpoint folder, 4 iteration lines, the checkpoint saves, the summary (10).
CONSOLE_LINES = 30


def test_train_without_base_model_is_one_line(tmp_path):
    work_dir = tmp_path / 'work_dir'
    result = run_tool_here(
        'train.py',
        TINY_CONFIG,
        '--work-dir',
        work_dir,
        '--cfg-options',
        f'model.pretrained_model_name_or_path={tmp_path}/missing',
        check=False,
    )
    error = one_line_error(result)
    assert f'{tmp_path}/missing' in error and 'make_tiny_models.py' in error
    assert result.stderr.rstrip().endswith(error)  # the error comes last
    assert not work_dir.exists()  # a failed run leaves no empty work dir


@pytest.fixture(scope='session')
def installed(tmp_path_factory) -> str:
    """The package after a real ``pip install`` (into a folder of its own,
    once per run)."""

    def install(site: str) -> str:
        with repo_build_lock(tmp_path_factory):
            return install_checkout(site)

    site = build_once(tmp_path_factory, 'site', install)
    assert osp.isfile(osp.join(site, 'diffengine_ipa/.mim/tools/train.py'))
    return site


def mim_train(
    site: str, config: str, family: dict, work_dir, *options: str
) -> subprocess.CompletedProcess:
    """``mim train diffengine_ipa CONFIG`` for one epoch on a tiny family."""
    options = [f'{k}={v}' for k, v in tiny_overrides(family).items()] + list(options)
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    return subprocess.run(
        [
            mim,
            'train',
            'diffengine_ipa',
            config,
            '--work-dir',
            str(work_dir),
            '--cfg-options',
            *options,
            'train_cfg.max_epochs=1',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=site),
    )


@pytest.mark.slow
def test_pip_install_ships_every_config_for_mim(installed):
    """mim finds a config by its path in the installed package: every leaf
    and base is there, the DiT families' included. (One ``mim train`` runs
    below; every config trains in tests/test_every_config_runs.py.)"""
    configs = sorted(
        osp.relpath(p, REPO)
        for p in glob.glob(osp.join(REPO, 'configs/**/*.py'), recursive=True)
    )
    assert {osp.relpath(c, REPO) for c in TINY_CONFIGS.values()} <= set(configs)
    missing = [
        c
        for c in configs
        if not osp.isfile(osp.join(installed, 'diffengine_ipa/.mim', c))
    ]
    assert not missing, missing


@pytest.mark.slow
def test_pip_install_ships_the_shapes_world_data(installed, tmp_path):
    """An installed kit, run outside the checkout, finds the shapes world's
    shipped bases and adapters (``python tools/shapes_world.py`` installs
    them into the world folder)."""
    code = (
        'from diffengine_ipa.shapes_world import bases, contact_sheet;'
        'print(bases.SHIPPED); print(contact_sheet.SHIPPED_ADAPTERS)'
    )
    out = subprocess.run(
        [sys.executable, '-c', code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=installed),
    ).stdout.split()
    assert out[0].startswith(installed), out
    assert osp.isfile(osp.join(out[0], 'manifest.json'))
    assert osp.isfile(osp.join(out[1], 'sd15.safetensors'))


@pytest.mark.slow
def test_pip_install_ships_no_scaffolding(installed):
    """The installed package holds the product only: the random-weight
    models the demo needs, no test scaffolding and no benchmarks."""
    assert osp.isfile(
        osp.join(installed, 'diffengine_ipa/models/random_models/architectures.py')
    )
    for absent in ('diffengine_ipa/testing', 'benchmarks'):
        assert not osp.exists(osp.join(installed, absent)), absent


@pytest.mark.slow
def test_mim_train_after_pip_install(installed, tiny_family, tmp_path):
    site = installed
    work_dir = tmp_path / 'work_dir'
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    result = mim_train(
        site, 'configs/ip_adapter/tiny_sd15_mini_dataset.py', tiny_family, work_dir
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert osp.join(site, 'diffengine_ipa/.mim/tools/train.py') in result.stdout
    assert (work_dir / 'iter_5.pth').is_file()
    (log,) = glob.glob(str(work_dir / '*' / '*.log'))  # <timestamp>/<ts>.log
    with open(log) as f:
        assert 'loss:' in f.read()

    # mim test runs tools/test.py: the quick evaluation of that checkpoint.
    out_dir = tmp_path / 'eval'
    result = subprocess.run(
        [
            mim,
            'test',
            'diffengine_ipa',
            'configs/ip_adapter/tiny_sd15_mini_dataset.py',
            '--checkpoint',
            str(work_dir / 'iter_5.pth'),
            '--quick',
            '--work-dir',
            str(work_dir),
            '--out-dir',
            str(out_dir),
            '--cfg-options',
            *options,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=site),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out_dir / 'eval_report.json').is_file()


def test_config_typo_is_one_line(tmp_path):
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = ['{TINY_CONFIG}']\ntrian_cfg = dict(max_epochs=1)\n")
    error = one_line_error(run_tool_here('train.py', config, check=False))
    assert error == (
        f"error: {config}: unknown top-level key 'trian_cfg' "
        "(did you mean 'train_cfg'?)"
    )
    error = one_line_error(
        run_tool_here(
            'test.py',
            TINY_CONFIG,
            tmp_path,
            '--cfg-options',
            'test_evaluatr.clip_model=x',
            check=False,
        )
    )
    assert error == (
        'error: --cfg-options: unknown top-level key '
        "'test_evaluatr' (did you mean 'test_evaluator'?)"
    )


@pytest.mark.slow
def test_train_reports_the_hardware_settings_first(tiny_family, tmp_path):
    """`--amp auto`: the first lines say what was chosen and why, the log
    file has them too; `validate=False` leaves no validation or samples."""
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    result = run_tool(
        'train.py',
        TINY_CONFIG,
        '--work-dir',
        tmp_path,
        '--amp',
        'auto',
        '--cfg-options',
        *options,
        'train_cfg.max_epochs=1',
        'validate=False',
        'hardware.threads=auto',
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith('hardware: cpu (')
    assert lines[1].startswith("hardware.amp = '")
    assert lines[2].startswith('hardware.frozen_dtype = ')
    assert lines[3].startswith('hardware.threads = ')
    # The console: short, the first iterations logged, no third-party
    # notice, the summary last; the config dump and hooks in the log file.
    console = (result.stdout + result.stderr).splitlines()
    assert len(console) <= CONSOLE_LINES, '\n'.join(console)
    assert not [line for line in console if is_noise(line)]
    assert sum('Epoch(train) [1][' in line for line in lines) == 4  # 1-3, 5
    summary = lines[
        lines.index(
            next(line for line in lines if line.startswith('done: 5 iterations'))
        ) :
    ]
    assert summary[1].strip().startswith('checkpoint') and 'iter_5.pth' in summary[1]
    assert 'final loss' in summary[3] and summary[-1].strip().startswith(
        'python tools/plot_loss.py'
    )
    assert not any(line.startswith('Config:') for line in console)
    (log,) = glob.glob(str(tmp_path / '*' / '*.log'))
    text = open(log).read()
    assert 'Config:' in text and 'Hooks will be executed' in text
    assert 'Hardware settings:\nhardware: cpu' in text
    assert 'loss:' in text and 'ipa/clip_i' not in text
    assert not glob.glob(str(tmp_path / '*' / 'vis_data' / 'vis_image'))


@pytest.mark.slow
def test_mim_slurm_builds_the_srun_command(installed, tmp_path):
    """``mim train ... --launcher slurm`` (the README's command) gets as far
    as running srun with the train script: a fake srun on PATH says so."""
    srun = tmp_path / 'bin' / 'srun'
    srun.parent.mkdir()
    srun.write_text('#!/bin/sh\necho "fake srun: $@"\n')
    srun.chmod(0o755)
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    result = subprocess.run(
        [
            mim,
            'train',
            'diffengine_ipa',
            'configs/ip_adapter/sdxl_mini_dataset.py',
            '--launcher',
            'slurm',
            '--gpus',
            '16',
            '--gpus-per-node',
            '8',
            '--partition',
            'PARTITION',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(
            os.environ,
            PYTHONPATH=installed,
            PATH=f'{srun.parent}{os.pathsep}{os.environ["PATH"]}',
        ),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'fake srun: -p PARTITION --gres=gpu:8 --ntasks=16' in result.stdout
    assert (
        '.mim/tools/train.py configs/ip_adapter/sdxl_mini_dataset.py '
        '--launcher slurm' in result.stdout
    )


@pytest.mark.slow
def test_mim_error_is_the_tools_line_then_mims_traceback(installed, tmp_path):
    """What mim adds, as the README says: the tool's one line, then mim's
    own ``CalledProcessError`` traceback (openmim 0.3.9 raises on any
    failure of the script) and exit 1."""
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = ['{TINY_CONFIG}']\ntrian_cfg = dict()\n")
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    result = subprocess.run(
        [mim, 'train', 'diffengine_ipa', str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=installed),
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert errors == [
        f"error: {config}: unknown top-level key 'trian_cfg' "
        "(did you mean 'train_cfg'?)"
    ]
    assert 'subprocess.CalledProcessError' in result.stderr


def test_tensorboard_flag(tmp_path):
    """``--tensorboard`` adds MMEngine's backend where the runner reads it,
    or stops with one line naming the extra to install."""
    import importlib.util

    from mmengine.config import Config

    from diffengine_ipa.apis.train import enable_tensorboard
    from diffengine_ipa.errors import UserError

    cfg = Config.fromfile(TINY_CONFIG)
    if importlib.util.find_spec('tensorboard') is None:
        with pytest.raises(UserError, match=r"pip install '\.\[tensorboard\]'"):
            enable_tensorboard(cfg)
        return
    enable_tensorboard(cfg)
    enable_tensorboard(cfg)  # once only
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend',
        'TensorboardVisBackend',
    ]
