"""The adapter's moving average: trained beside it, exported by convert --ema."""

import torch
from mmengine.runner import Runner
from safetensors.torch import load_file

from ..conftest import load_tiny_config
from ..tools.helpers import run_tool_in_process


def test_ema_of_the_adapter_only_is_saved_and_exported(tiny_family, tmp_path):
    work_dir = tmp_path / 'run'
    cfg = load_tiny_config(
        tiny_family,
        work_dir,
        **{
            'train_cfg.max_epochs': 1,
            'train_dataloader.dataset.indices': 2,
            'default_hooks.checkpoint.interval': 2,
        },
    )
    cfg.custom_hooks.append(dict(type='AdapterEMAHook', momentum=0.3))
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h['type'] != 'IPAdapterVisualizationHook'
    ]
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # no sampling
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    ema = runner.hooks[
        [type(h).__name__ for h in runner.hooks].index('AdapterEMAHook')
    ].ema_model
    adapter = model.adapter_parameter_names()
    assert set(ema.avg_parameters) == adapter  # the frozen base is not copied
    assert sum(p.numel() for p in ema.parameters()) == sum(
        p.numel() for n, p in model.named_parameters() if n in adapter
    )

    checkpoint = torch.load(work_dir / 'iter_2.pth', weights_only=True)
    raw, averaged = checkpoint['state_dict'], checkpoint['ema_state_dict']
    assert set(raw) == adapter
    assert {k[len('module.') :] for k in averaged if k != 'steps'} == adapter
    assert any(not torch.equal(raw[k], averaged[f'module.{k}']) for k in raw)

    plain = tmp_path / 'plain.safetensors'
    smooth = tmp_path / 'ema.safetensors'
    for out, extra in ((plain, ()), (smooth, ('--ema',))):
        result = run_tool_in_process(
            'convert.py', work_dir / 'iter_2.pth', '--out', out, *extra
        )
        assert result.returncode == 0, result.stderr
    plain, smooth = load_file(plain), load_file(smooth)
    assert plain.keys() == smooth.keys()
    assert any(not torch.equal(plain[k], smooth[k]) for k in plain)
    ema_values = {
        round(float(v.double().sum()), 4) for k, v in averaged.items() if k != 'steps'
    }
    assert all(round(float(v.double().sum()), 4) in ema_values for v in smooth.values())


def test_convert_ema_without_ema_is_one_line(tmp_path):
    torch.save({'state_dict': {}, 'meta': {}}, tmp_path / 'iter_1.pth')
    result = run_tool_in_process(
        'convert.py',
        tmp_path / 'iter_1.pth',
        '--ema',
        '--out',
        tmp_path / 'x.safetensors',
    )
    assert result.returncode == 2
    assert 'no EMA weights (ema_state_dict)' in result.stderr
