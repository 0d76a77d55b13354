"""Training from the command line: tools/train.py and, after a real
``pip install``, ``mim train diffengine_ipa CONFIG``."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from ..conftest import REPO, TINY_CONFIG, TINY_CONFIGS, tiny_overrides
from .helpers import one_line_error, run_tool


def test_train_without_base_model_is_one_line(tmp_path):
    result = run_tool(
        'train.py', TINY_CONFIG, '--work-dir', tmp_path, '--cfg-options',
        f'model.pretrained_model_name_or_path={tmp_path}/missing', check=False)
    error = one_line_error(result)
    assert f'{tmp_path}/missing' in error and 'make_tiny_models.py' in error


@pytest.fixture(scope='module')
def installed(tmp_path_factory) -> str:
    """The package after a real ``pip install`` (into a folder of its own)."""
    site = tmp_path_factory.mktemp('site')
    subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
         '--no-build-isolation', '--target', str(site), REPO],
        check=True, capture_output=True)
    assert (site / 'diffengine_ipa/.mim/tools/train.py').is_file()
    return str(site)


def mim_train(site: str, config: str, family: dict, work_dir
              ) -> subprocess.CompletedProcess:
    """``mim train diffengine_ipa CONFIG`` for one epoch on a tiny family."""
    options = [f'{k}={v}' for k, v in tiny_overrides(family).items()]
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    return subprocess.run(
        [mim, 'train', 'diffengine_ipa', config, '--work-dir', str(work_dir),
         '--cfg-options', *options, 'train_cfg.max_epochs=1'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=site))


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['sd3', 'flux'])
def test_mim_trains_the_dit_families(installed, tiny_families, tmp_path,
                                     variant):
    config = osp.relpath(TINY_CONFIGS[variant], REPO)
    assert osp.isfile(osp.join(installed, 'diffengine_ipa/.mim', config))
    result = mim_train(installed, config, tiny_families[variant], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / 'iter_5.pth').is_file()


@pytest.mark.slow
def test_mim_train_after_pip_install(installed, tiny_family, tmp_path):
    site = installed
    work_dir = tmp_path / 'work_dir'
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    result = mim_train(site, 'configs/ip_adapter/tiny_sd15_mini_dataset.py',
                       tiny_family, work_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert osp.join(site, 'diffengine_ipa/.mim/tools/train.py') in result.stdout
    assert (work_dir / 'iter_5.pth').is_file()
    (log, ) = glob.glob(str(work_dir / '*' / '*.log'))  # <timestamp>/<ts>.log
    with open(log) as f:
        assert 'loss:' in f.read()

    # mim test runs tools/test.py: the quick evaluation of that checkpoint.
    out_dir = tmp_path / 'eval'
    result = subprocess.run(
        [mim, 'test', 'diffengine_ipa',
         'configs/ip_adapter/tiny_sd15_mini_dataset.py', '--checkpoint',
         str(work_dir / 'iter_5.pth'), '--quick', '--work-dir', str(work_dir),
         '--out-dir', str(out_dir), '--cfg-options', *options],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=site))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out_dir / 'eval_report.json').is_file()


def test_config_typo_is_one_line(tmp_path):
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = ['{TINY_CONFIG}']\ntrian_cfg = dict(max_epochs=1)\n")
    error = one_line_error(run_tool('train.py', config, check=False))
    assert error == (f"error: {config}: unknown top-level key 'trian_cfg' "
                     "(did you mean 'train_cfg'?)")
    error = one_line_error(run_tool(
        'test.py', TINY_CONFIG, tmp_path, '--cfg-options',
        'test_evaluatr.clip_model=x', check=False))
    assert error == ("error: --cfg-options: unknown top-level key "
                     "'test_evaluatr' (did you mean 'test_evaluator'?)")


@pytest.mark.slow
def test_train_reports_the_hardware_settings_first(tiny_family, tmp_path):
    """`--amp auto`: the first lines say what was chosen and why, the log
    file has them too; `validate=False` leaves no validation or samples."""
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    result = run_tool('train.py', TINY_CONFIG, '--work-dir', tmp_path,
                      '--amp', 'auto', '--cfg-options', *options,
                      'train_cfg.max_epochs=1', 'validate=False',
                      'hardware.threads=auto')
    lines = result.stdout.splitlines()
    assert lines[0].startswith('hardware: cpu (')
    assert lines[1].startswith("hardware.amp = '")
    assert lines[2].startswith('hardware.frozen_dtype = ')
    assert lines[3].startswith('hardware.threads = ')
    (log, ) = glob.glob(str(tmp_path / '*' / '*.log'))
    text = open(log).read()
    assert 'Hardware settings:\nhardware: cpu' in text
    assert 'loss:' in text and 'ipa/clip_i' not in text
    assert not glob.glob(str(tmp_path / '*' / 'vis_data' / 'vis_image'))
