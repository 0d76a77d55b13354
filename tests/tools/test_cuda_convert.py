"""A GPU run's converted file on a CPU: it loads, and tools/infer.py gives
the image diffusers gives with it. Skipped without a CUDA GPU;
benchmarks/gpu/run.sh runs it."""

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from PIL import Image
from safetensors.torch import load_file

from ..conftest import TINY_CONFIG, load_tiny_config, tiny_overrides
from .diffusers_side import diffusers_pipeline, diffusers_pixels
from .helpers import run_tool
from .test_diffusers_interop import CAT, INFER_CAT, PROMPT

pytestmark = [pytest.mark.cuda, pytest.mark.slow]


def test_gpu_trained_file_gives_the_diffusers_image_on_cpu(tiny_family, tmp_path):
    work_dir = tmp_path / 'gpu_run'
    cfg = load_tiny_config(
        tiny_family,
        work_dir,
        **{
            'train_cfg.max_epochs': 1,
            'model.frozen_dtype': 'bf16',
            'optim_wrapper.type': 'AutocastOptimWrapper',
            'optim_wrapper.dtype': 'bfloat16',
        },
    )
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.model.family.unet.device.type == 'cuda'
    trained = {k: v.cpu() for k, v in runner.model.state_dict().items()}

    run_tool('convert.py', work_dir)  # its last checkpoint
    adapter = str(work_dir / 'ip_adapter.safetensors')
    weights = load_file(adapter, device='cpu')
    assert weights and all(v.dtype == torch.float32 for v in weights.values())
    assert sorted(v.numel() for v in weights.values()) == sorted(
        v.numel() for v in trained.values()
    )

    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    run_tool(
        'infer.py',
        TINY_CONFIG,
        adapter,
        *INFER_CAT,
        '--device',
        'cpu',
        '--out',
        tmp_path / 'ours.png',
        '--cfg-options',
        *options,
    )
    ours = np.asarray(Image.open(tmp_path / 'ours.png'), dtype=np.int16)
    pipe = diffusers_pipeline('sd15', tiny_family, adapter)
    pipe.set_ip_adapter_scale(0.7)
    theirs = diffusers_pixels(
        pipe, 'sd15', PROMPT, ip_adapter_image=Image.open(CAT).convert('RGB')
    )
    assert ours.shape == theirs.shape == (64, 64, 3)
    assert np.abs(ours - theirs).max() <= 1  # ≤ 1/255
    assert osp.getsize(adapter) < 1 << 20
