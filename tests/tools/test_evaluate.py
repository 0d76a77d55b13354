"""tools/test.py, tools/plot_loss.py and the scale-0 sanity check."""

import json
import os.path as osp

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from ..conftest import REPO, TINY_CONFIG, tiny_overrides
from .helpers import one_line_error, run_tool, run_tool_here


def options(family: dict, *extra: str) -> list[str]:
    """``--cfg-options`` for the tiny ``family``, generating in 2 steps."""
    return [
        '--cfg-options',
        *[f'{k}={v}' for k, v in tiny_overrides(family).items()],
        'model.generation_cfg.steps=2',
        *extra,
    ]


def read_report(out_dir) -> dict:
    report = json.loads((out_dir / 'eval_report.json').read_text())
    for case in report['cases']:
        for values in case['scales'].values():
            assert 0 <= values['reference_preservation_percent'] <= 100
            assert 0 <= values['prompt_following_percent'] <= 100
            assert -1 <= values['clip_i'] <= 1 and -1 <= values['clip_t'] <= 1
            assert values['grade'] in ('A+', 'A', 'B', 'C', 'F')
            assert all(osp.isfile(p) for p in values['images'])
    return report


def quick_report(run, config: str, adapter: str, family: dict, tmp_path):
    """``tools/test.py --quick``, run by ``run``: its result and its report,
    checked to hold the three quick cases, one image each."""
    out_dir = tmp_path / 'quick'
    result = run(
        'test.py',
        config,
        adapter,
        '--quick',
        '--work-dir',
        tmp_path,
        '--out-dir',
        out_dir,
        *options(family),
    )
    report = read_report(out_dir)
    assert [case['id'] for case in report['cases']] == ['cat', 'mountains', 'rocket']
    assert len(list((out_dir / 'images').iterdir())) == 3
    return result, report


def test_quick_evaluation_runs_the_three_quick_cases(tiny_family, converted, tmp_path):
    result, report = quick_report(
        run_tool, TINY_CONFIG, converted['safetensors'], tiny_family, tmp_path
    )
    assert all(list(case['scales']) == ['1'] for case in report['cases'])
    assert (
        report['mode'] == 'quick' and report['checkpoint'] == converted['safetensors']
    )
    assert 'overall' in result.stdout + result.stderr  # the console table


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['sd3', 'flux'])
def test_quick_evaluation_of_dit_families(
    tiny_families, convert_tiny, variant, tmp_path
):
    from ..conftest import TINY_CONFIGS

    quick_report(
        run_tool_here,
        TINY_CONFIGS[variant],
        convert_tiny(variant)['safetensors'],
        tiny_families[variant],
        tmp_path,
    )


def test_full_evaluation_sweeps_scales_and_seeds(tiny_family, converted, tmp_path):
    out_dir = tmp_path / 'full'
    run_tool_here(
        'test.py',
        TINY_CONFIG,
        converted['checkpoint'],
        '--out-dir',
        out_dir,
        '--work-dir',
        tmp_path,
        *options(
            tiny_family,
            'test_dataloader.dataset.scales=[0.0,1.0]',
            'test_dataloader.dataset.seeds=[0,1]',
        ),
    )
    report = read_report(out_dir)
    assert len(report['cases']) == 6
    assert set(report['per_scale']) == {'0', '1'}
    assert report['overall']['diversity'] > 0  # seeds give different images
    assert sorted(osp.basename(p) for p in report['grids']) == [
        'grid_seed0.png',
        'grid_seed1.png',
    ]
    assert report['tradeoff_plot'] == str(out_dir / 'tradeoff.png')
    assert Image.open(report['tradeoff_plot']).size[0] > 300
    assert len(list((out_dir / 'images').iterdir())) == 6 * 2 * 2


@pytest.mark.slow
def test_two_adapters_are_compared_on_the_same_cases(
    tiny_families, tmp_path, converted
):
    from .published_files import official_file

    other = tmp_path / 'published.safetensors'
    official_file(tiny_families, 'sd15', other, seed=3)
    out_dir = tmp_path / 'compare'
    result = run_tool_here(
        'test.py',
        TINY_CONFIG,
        converted['safetensors'],
        other,
        '--quick',
        '--work-dir',
        tmp_path,
        '--out-dir',
        out_dir,
        *options(tiny_families['sd15']),
    )
    comparison = json.loads((out_dir / 'comparison.json').read_text())
    assert list(comparison['overall']) == ['ip_adapter', 'published']
    assert comparison['grids'] == [str(out_dir / 'comparison_grid_scale1.png')]
    grid = Image.open(comparison['grids'][0])
    assert grid.size == (3 * 256, 28 + 3 * 256)  # reference | two adapters
    assert (out_dir / 'ip_adapter/eval_report.json').is_file()
    assert (out_dir / 'published/eval_report.json').is_file()
    assert (out_dir / 'comparison_tradeoff.png').is_file()
    assert 'published' in result.stdout and 'CLIP-I' in result.stdout


def test_wrong_adapter_stops_evaluation_with_one_line(
    tiny_families, converted, tmp_path
):
    error = one_line_error(
        run_tool_here(
            'test.py',
            osp.join(REPO, 'configs/ip_adapter/tiny_sdxl_mini_dataset.py'),
            converted['safetensors'],
            '--quick',
            '--work-dir',
            tmp_path,
            *options(tiny_families['sdxl']),
            check=False,
        )
    )
    assert 'cross-attention' in error


def test_scale_zero_equals_the_base_pipeline(tiny_family, converted):
    """At scale 0 the adapter has no effect: diffusers' base pipeline, same
    seed, gives the same image."""
    from mmengine.config import Config

    from diffengine_ipa.apis import build_pipeline

    cfg = Config.fromfile(TINY_CONFIG)
    cfg.merge_from_dict(tiny_overrides(tiny_family))
    pipe = build_pipeline(cfg.model, converted['safetensors'])
    reference = Image.open(osp.join(REPO, 'data/mini_dataset/images/cat.jpg'))
    ours = pipe(reference.convert('RGB'), 'a cat', scale=0.0, steps=4, seed=5)[0]
    base = StableDiffusionPipeline.from_pretrained(
        tiny_family['base'], safety_checker=None, requires_safety_checker=False
    )
    base.set_progress_bar_config(disable=True)
    theirs = base(
        'a cat',
        num_inference_steps=4,
        guidance_scale=7.5,
        generator=torch.Generator('cpu').manual_seed(5),
    ).images[0]
    difference = np.abs(np.asarray(ours, np.int16) - np.asarray(theirs, np.int16))
    assert difference.max() <= 1
    with_adapter = pipe(reference.convert('RGB'), 'a cat', scale=1.0, steps=4, seed=5)[
        0
    ]
    assert not np.array_equal(np.asarray(with_adapter), np.asarray(ours))


def test_plot_loss_from_a_real_run(trained_work_dir, tmp_path):
    out = tmp_path / 'curve.png'
    result = run_tool('plot_loss.py', trained_work_dir, '--out', out, '--smooth', '2')
    assert 'wrote' in result.stdout and '2 logged steps' in result.stdout
    # Its last-epoch validation's reference gain: a panel under the loss.
    assert 'reference gain' in result.stdout
    assert Image.open(out).size == (800, 800)


def test_plot_loss_without_logs_is_one_line(tmp_path):
    assert 'no */vis_data/scalars.json' in one_line_error(
        run_tool('plot_loss.py', tmp_path, check=False)
    )


@pytest.mark.parametrize('interval, epochs, expected', [(1, 2, [1, 2])])
def test_visualization_hook_writes_samples(
    tiny_family, tmp_path, interval, epochs, expected
):
    from mmengine.runner import Runner

    from ..conftest import load_tiny_config

    cfg = load_tiny_config(
        tiny_family,
        tmp_path,
        **{
            'train_cfg.max_epochs': epochs,
            'train_cfg.val_interval': 100,
            'default_hooks.checkpoint.interval': 100,
        },
    )
    cfg.merge_from_dict(tiny_overrides(tiny_family))
    (hook,) = [h for h in cfg.custom_hooks if h.type == 'IPAdapterVisualizationHook']
    hook.interval = interval
    Runner.from_cfg(cfg).train()
    (vis_dir,) = (tmp_path).glob('*/vis_data/vis_image')
    names = sorted(p.name for p in vis_dir.iterdir())
    assert names == sorted(
        f'sample_{case}_{step}.png'
        for case in ('cat', 'mountains', 'rocket')
        for step in expected
    )
    panel = Image.open(vis_dir / names[0])
    assert panel.size == (128, 64)  # reference | generated, at 64 px


def test_visualization_samples_use_true_cfg(tiny_families, tmp_path):
    """A FLUX config's samples during training are made with its true CFG
    (``generation_cfg.true_cfg_scale`` against the empty negative prompt), as
    its test-set images are: the sample is the validation image (to a
    rounding), not the one without true CFG."""
    from mmengine.runner import Runner

    from ..conftest import TINY_CONFIGS, load_tiny_config

    family = tiny_families['flux']
    cfg = load_tiny_config(
        family,
        tmp_path,
        TINY_CONFIGS['flux'],
        **{
            'train_cfg.max_epochs': 1,
            'train_cfg.val_interval': 100,
            'default_hooks.checkpoint.interval': 100,
            'model.generation_cfg.true_cfg_scale': 4.0,
            'model.generation_cfg.negative_prompt': '',
            'model.generation_cfg.steps': 2,
        },
    )
    (hook,) = [h for h in cfg.custom_hooks if h.type == 'IPAdapterVisualizationHook']
    hook.interval, hook.num_cases = 1, 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    (panel_file,) = tmp_path.glob('*/vis_data/vis_image/sample_*_1.png')
    panel = np.asarray(Image.open(panel_file))
    sample = panel[:, panel.shape[1] // 2 :]
    batch = next(iter(runner.val_dataloader))

    def image() -> np.ndarray:
        return np.asarray(runner.model.val_step(batch)[0]['image'], dtype=float)

    with_true_cfg = image()
    runner.model.generation_cfg['true_cfg_scale'] = None
    without = image()
    assert np.abs(sample - with_true_cfg).mean() < 1
    assert np.abs(sample - without).mean() > 10 * np.abs(sample - with_true_cfg).mean()
