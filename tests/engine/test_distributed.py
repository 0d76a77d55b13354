"""Batch-size invariance on mmengine's engine: gradient accumulation, and two
gloo processes through ``torchrun``, equal one process at the combined batch."""

import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

from ..conftest import REPO, TINY_CONFIG
from ..tools.helpers import run_tool_here

MINI_DATASET = osp.join(REPO, 'data/mini_dataset')


def write_config(
    folder,
    tiny_family: dict,
    ann_file: str,
    batch_size: int,
    accumulative_counts: int = 1,
) -> str:
    """A tiny config trained for one epoch with plain SGD (its update is
    proportional to the gradient; Adam's first step is nearly its sign and
    would hide a wrongly scaled one), no validation, and a hook that saves
    every rank's adapter."""
    path = osp.join(folder, f'b{batch_size}_x{accumulative_counts}.py')
    with open(path, 'w') as f:
        f.write(f"""
_base_ = [{TINY_CONFIG!r}]
model = dict(pretrained_model_name_or_path={tiny_family['base']!r},
             image_encoder=dict(
                 pretrained_model_name_or_path={tiny_family['image_encoder']!r}))
train_dataloader = dict(batch_size={batch_size},
                        dataset=dict(ann_file={ann_file!r},
                                     data_root={MINI_DATASET!r}))
train_cfg = dict(max_epochs=1)
val_dataloader = val_cfg = val_evaluator = None
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=10.0),
                     accumulative_counts={accumulative_counts})
default_hooks = dict(checkpoint=dict(interval=1))
custom_imports = dict(imports=['tests.engine.rank_adapter_hook'])
custom_hooks = [dict(type='AdapterCheckpointHook'),
                dict(type='NonFiniteLossGuardHook'),
                dict(type='SaveRankAdapterHook')]
""")
    return path


@pytest.fixture(scope='module')
def four_records(tmp_path_factory) -> str:
    """A data.json of the first four mini-dataset records (images relative
    to ``data_root=MINI_DATASET``)."""
    with open(osp.join(MINI_DATASET, 'data.json')) as f:
        records = json.load(f)[:4]
    path = tmp_path_factory.mktemp('four_records') / 'data.json'
    path.write_text(json.dumps(records))
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train(config: str, work_dir, processes: int = 1) -> list[dict]:
    """Run tools/train.py (under torchrun for several processes, else in
    this process); the adapter of each rank."""
    script = [osp.join(REPO, 'tools/train.py'), config, '--work-dir', str(work_dir)]
    if processes == 1:  # this process: the launch is not what is tested
        run_tool_here('train.py', *script[1:])
    else:
        launch(script, processes)
    return [
        torch.load(osp.join(work_dir, f'adapter_rank{rank}_end.pt'), weights_only=True)
        for rank in range(processes)
    ]


def launch(script: list[str], processes: int) -> None:
    """``script`` under torchrun with ``processes`` ranks; it must succeed."""
    command = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--nproc_per_node',
        str(processes),
        '--master_port',
        str(free_port()),
        *script,
        '--launcher',
        'pytorch',
    ]
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
    )
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=env, timeout=600
    )
    errors = [line for line in result.stderr.splitlines() if 'Error' in line]
    assert result.returncode == 0, '\n'.join(errors[:20]) + result.stderr[-2000:]


def relative_difference(a: dict, b: dict, start: dict) -> float:
    """Largest difference of two updates, relative to the update's size."""
    return max(
        ((a[k] - b[k]).abs().max() / (a[k] - start[k]).abs().max()).item()
        for k in start
    )


@pytest.fixture(scope='module')
def batch_of_4(tiny_family, four_records, tmp_path_factory):
    """(initial adapter, adapter after one step at batch 4, work dir)."""
    folder = tmp_path_factory.mktemp('batch_of_4')
    config = write_config(folder, tiny_family, four_records, 4)
    (after,) = train(config, folder / 'run')
    start = torch.load(folder / 'run/adapter_rank0_start.pt', weights_only=True)
    return start, after, folder / 'run'


def test_accumulation_equals_the_big_batch(
    tiny_family, four_records, batch_of_4, tmp_path
):
    start, big_batch, _ = batch_of_4
    config = write_config(tmp_path, tiny_family, four_records, 2, accumulative_counts=2)
    (accumulated,) = train(config, tmp_path / 'accumulated')
    assert relative_difference(accumulated, big_batch, start) < 1e-4
    # Without accumulation batch 2 makes two different updates: the
    # comparison can fail.
    config = write_config(tmp_path, tiny_family, four_records, 2)
    (two_steps,) = train(config, tmp_path / 'two_steps')
    assert relative_difference(two_steps, big_batch, start) > 0.1


@pytest.fixture(scope='module')
def two_processes(tiny_family, four_records, tmp_path_factory):
    """(each rank's adapter, work dir) of 2 gloo processes at batch 2."""
    folder = tmp_path_factory.mktemp('two_processes')
    config = write_config(folder, tiny_family, four_records, 2)
    return train(config, folder / 'run', processes=2), folder / 'run'


def test_two_processes_equal_one_at_the_combined_batch(two_processes, batch_of_4):
    (rank0, rank1), work_dir = two_processes
    start, big_batch, _ = batch_of_4
    # Rank 0 alone writes the checkpoint and the log.
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_1.pth']
    assert len(list(work_dir.glob('*/*.log'))) == 1
    assert rank0.keys() == rank1.keys() == big_batch.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert relative_difference(rank0, big_batch, start) < 1e-4


def test_two_process_checkpoint_converts_like_one(
    two_processes, batch_of_4, tiny_family
):
    from safetensors.torch import load_file

    from diffengine_ipa.models import IPAdapter

    (rank0, _), work_dir = two_processes
    _, _, single_dir = batch_of_4
    files = {}
    for name, folder in (('ddp', work_dir), ('single', single_dir)):
        run_tool_here('convert.py', osp.join(folder, 'iter_1.pth'))
        files[name] = osp.join(folder, 'ip_adapter.safetensors')
    ddp, single = (load_file(files[k]) for k in ('ddp', 'single'))
    assert ddp.keys() == single.keys()
    for key in ddp:
        assert ddp[key].shape == single[key].shape
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-6)
    model = IPAdapter(
        tiny_family['base'],
        tiny_family['image_encoder'],
        pretrained_ip_adapter=files['ddp'],
    )
    for key, value in model.state_dict().items():
        assert torch.equal(value, rank0[key]), key


def test_auto_scale_lr_counts_accumulation():
    from mmengine.config import Config

    cfg = Config.fromfile(TINY_CONFIG)
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=64)
    cfg.optim_wrapper.accumulative_counts = 4
    from diffengine_ipa.apis.train import enable_auto_scale_lr

    enable_auto_scale_lr(cfg)
    # mmengine compares batch_size x processes with base_batch_size: with 4
    # accumulated steps, 16 per step is the recipe's 64 images per update.
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)


def test_strategy_configs_use_flexible_runner():
    from mmengine.config import Config

    fsdp = Config.fromfile(
        osp.join(REPO, 'configs/ip_adapter/sdxl_mini_dataset_fsdp.py')
    )
    assert fsdp.runner_type == 'FlexibleRunner'
    assert fsdp.strategy.type == 'FSDPStrategy'
    assert fsdp.strategy.model_wrapper.use_orig_params
    assert fsdp.model.adapter_only_state_dict is False
    flux = Config.fromfile(
        osp.join(REPO, 'configs/ip_adapter/flux_mini_dataset_fsdp.py')
    )
    assert flux.runner_type == 'FlexibleRunner'
    assert flux.strategy.model_wrapper.auto_wrap_policy == dict(
        type='block_wrap_policy',
        block_names=['FluxTransformerBlock', 'FluxSingleTransformerBlock'],
    )
    assert flux.model.frozen_dtype == 'bf16' and flux.model.gradient_checkpointing
    deepspeed = Config.fromfile(
        osp.join(REPO, 'configs/ip_adapter/sdxl_mini_dataset_deepspeed.py')
    )
    assert deepspeed.strategy.zero_optimization.stage == 2
    assert deepspeed.strategy.exclude_frozen_parameters
    assert deepspeed.optim_wrapper == dict(
        type='DeepSpeedOptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
    )


def test_block_wrap_policy_shards_each_transformer_block():
    """FSDP's auto-wrap visits every module (recurse) and makes a unit of
    each block named in the config: FLUX's 19 + 38 blocks at full size."""
    from functools import partial

    from diffengine_ipa.models.random_models import build_component
    from diffengine_ipa.registry import FUNCTIONS

    policy = partial(
        FUNCTIONS.get('block_wrap_policy'),
        block_names=['FluxTransformerBlock', 'FluxSingleTransformerBlock'],
    )
    transformer = build_component('tiny_flux', 'transformer')
    units = [
        name
        for name, module in transformer.named_modules()
        if policy(module, recurse=False, nonwrapped_numel=0)
    ]
    assert units == [
        'transformer_blocks.0',
        'transformer_blocks.1',
        'single_transformer_blocks.0',
    ]
    assert policy(transformer, recurse=True, nonwrapped_numel=0)
