"""Train an IP-Adapter from a config: what ``tools/train.py``, ``mim train``
and the web UI's runs (which start ``tools/train.py``) all call.

:func:`train` reads the config, applies the options and this machine's
hardware settings, refuses to start a fresh run over an earlier one, holds
the work dir's lock, runs MMEngine's runner and returns it; a run that fails
before its first checkpoint leaves no work dir, and Ctrl-C says where to
resume.
"""

import contextlib
import os
import os.path as osp
import time
from collections.abc import Callable
from typing import Any

from ..errors import UserError

__all__ = [
    'train',
    'build_train_config',
    'enable_auto_scale_lr',
    'enable_tensorboard',
    'summary',
    'is_first_process',
]


def train(
    config: str,
    work_dir: str | None = None,
    resume: str | None = None,
    amp: str | None = None,
    auto_scale_lr: bool = False,
    tensorboard: bool = False,
    cfg_options: dict | None = None,
    launcher: str = 'none',
    report: Callable[[str], None] = print,
) -> Any:
    """Train from ``config``; the finished runner.

    Args:
        config: The config file.
        work_dir: Where logs and checkpoints go (default: the config's, else
            ``work_dirs/<config name>``).
        resume: ``'auto'`` (the work dir's last checkpoint), a checkpoint, or
            None for a new run.
        amp: Precision (``tools/train.py --amp``; None: the config's).
        auto_scale_lr: Scale the learning rate with the effective batch.
        tensorboard: Also log to TensorBoard.
        cfg_options: Config overrides (``KEY=VALUE`` parsed).
        launcher: ``none``, ``pytorch``, ``slurm`` or ``mpi``.
        report: Where the hardware settings and the summary go (rank 0).

    Raises:
        UserError: one line for a config, option or work dir that cannot run.
        KeyboardInterrupt: on Ctrl-C, saying what to resume from.
    """
    from ..models.model_sources import disable_progress_bars
    from ..work_dir import refuse_fresh_run_over, work_dir_lock

    started = time.monotonic()
    cfg, settings = build_train_config(
        config, work_dir, resume, amp, auto_scale_lr, tensorboard, cfg_options, launcher
    )
    first = is_first_process()
    if first:  # before anything of MMEngine's
        report('\n'.join(settings))
    if first and not resume:
        refuse_fresh_run_over(cfg.work_dir)  # never overwrite an earlier run
    # One training per work dir: a second stops here, before any model loads.
    existed = osp.isdir(cfg.work_dir)
    lock = work_dir_lock(cfg.work_dir) if first else contextlib.nullcontext()
    runner = None
    try:
        with lock:
            if launcher != 'none':
                use_gloo_without_cuda(cfg, launcher)
            disable_progress_bars()
            runner = build_runner(cfg)
            runner.logger.info('Hardware settings:\n' + '\n'.join(settings))
            runner.train()
    except KeyboardInterrupt:  # its logs stay
        raise KeyboardInterrupt(interrupted(cfg.work_dir, runner)) from None
    except (Exception, SystemExit):
        if first and not existed:
            remove_if_no_checkpoint(cfg.work_dir)
        raise
    if first:
        report(summary(runner, config, started))
    return runner


def build_train_config(
    config: str,
    work_dir: str | None = None,
    resume: str | None = None,
    amp: str | None = None,
    auto_scale_lr: bool = False,
    tensorboard: bool = False,
    cfg_options: dict | None = None,
    launcher: str = 'none',
) -> tuple:
    """The config file with the options and the hardware settings applied,
    and the report of those settings (see :func:`train` for the arguments)."""
    from ..engine import hardware
    from ..official_format import find_checkpoint
    from ..user_config import load_user_config
    from ..work_dir import last_checkpoint

    cfg = load_user_config(config, cfg_options)
    cfg.launcher = launcher
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    settings = hardware.configure(cfg, amp)
    if auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if tensorboard:
        enable_tensorboard(cfg)
    if resume == 'auto':  # the work dir's pointer, read relative to it
        cfg.resume, cfg.load_from = True, last_checkpoint(cfg.work_dir)
    elif resume is not None:
        cfg.resume, cfg.load_from = True, find_checkpoint(resume)
    return cfg, settings


def enable_auto_scale_lr(cfg) -> None:
    """Turn on mmengine's linear LR scaling, counting gradient accumulation
    in the effective batch (mmengine counts batch_size x processes only)."""
    if 'auto_scale_lr' not in cfg:
        raise UserError(
            '--auto-scale-lr needs auto_scale_lr.base_batch_size '
            'in the config (the default runtime sets it)'
        )
    cfg.auto_scale_lr.enable = True
    counts = cfg.optim_wrapper.get('accumulative_counts', 1)
    cfg.auto_scale_lr.base_batch_size /= counts


def enable_tensorboard(cfg) -> None:
    """Add MMEngine's ``TensorboardVisBackend`` to the visualizer (where
    the runner reads it; a ``vis_backends`` variable in a child config is
    not), after checking that TensorBoard is installed."""
    import importlib.util

    if importlib.util.find_spec('tensorboard') is None:
        raise UserError(
            '--tensorboard needs the tensorboard package: pip '
            "install '.[tensorboard]' (or pip install -r "
            'requirements/tensorboard.txt)'
        )
    backends = cfg.visualizer.setdefault('vis_backends', [])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))


def use_gloo_without_cuda(cfg, launcher: str) -> None:
    """NCCL needs GPUs: on CPUs the processes talk over gloo. MMEngine's
    ``init_dist`` selects a CUDA device unconditionally, so a torchrun on
    CPUs joins its process group here (the Runner then keeps it), and DDP
    gets no device ids."""
    import torch

    if torch.cuda.is_available():
        return
    dist_cfg = cfg.env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is not None:
        cfg.model_wrapper_cfg['device_ids'] = None
    if cfg.get('strategy', {}).get('type') == 'FSDPStrategy':
        cfg.strategy.setdefault('model_wrapper', {})['device_id'] = 'cpu'
    if launcher == 'pytorch':
        import datetime

        import torch.distributed as dist

        timeout = datetime.timedelta(seconds=dist_cfg.get('timeout', 1800))
        dist.init_process_group('gloo', timeout=timeout)


def build_runner(cfg):
    """mmengine's Runner, or the runner ``runner_type`` names (e.g.
    ``FlexibleRunner`` for the FSDP and DeepSpeed strategies)."""
    from mmengine.runner import Runner

    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    from mmengine.registry import RUNNERS

    return RUNNERS.build(cfg)


def is_first_process() -> bool:
    """Rank 0 of a distributed launch (torchrun, slurm, MPI), or no launch."""
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        if name in os.environ:
            return os.environ[name] == '0'
    return True


def summary(runner, config: str, started: float) -> str:
    """What a person needs when training ends: where the checkpoint and
    the logs are, the final loss and validation scores, what to run next."""
    from ..work_dir import last_checkpoint

    work_dir = osp.relpath(runner.work_dir)
    try:
        checkpoint = osp.relpath(last_checkpoint(runner.work_dir))
    except UserError:
        checkpoint = '(none written)'
    scalars = runner.message_hub.log_scalars
    lines = [
        f'done: {runner.iter} iterations in {time.monotonic() - started:.1f} s',
        f'  checkpoint  {checkpoint}',
        f'  logs        {osp.relpath(runner.log_dir)}/ (the log, '
        'vis_data/scalars.json)',
    ]
    if 'train/loss' in scalars:
        loss = scalars['train/loss']
        window = min(5, len(loss.data[0]))
        lines.append(
            f'  final loss  {loss.mean(window):.4f} (mean of the '
            f'last {window} iterations)'
        )
    scores = {
        key[len('val/') :]: buffer.current()
        for key, buffer in scalars.items()
        if key.startswith('val/ipa/') and '@' not in key
    }  # not per scale
    if scores:
        lines.append(
            '  validation  '
            + '  '.join(
                f'{key.split("/")[-1]} {value:.2f}'
                for key, value in sorted(scores.items())
            )
        )
    if 'val/reference_gain' in scalars:
        gain = scalars['val/reference_gain'].current()
        none = scalars['val/no_reference_gain'].current()
        lines.append(
            f'  reference   gain {gain:+.4f} (shuffled references), '
            f'{none:+.4f} (none) at the last validation'
            + (
                ''
                if gain > 0
                else ': ≤ 0, the adapter is not using '
                'its reference yet (docs/training.md)'
            )
        )
    model = getattr(runner.model, 'module', runner.model)
    face_id = getattr(getattr(model, 'image_projection', None), 'face_id', False)
    lines += [
        'next:',
        f'  python tools/convert.py {work_dir}',
        f'  python tools/infer.py {config} {work_dir} '
        + ('--face FACE.jpg' if face_id else '--image REF.jpg'),
    ]
    if runner.cfg.get('test_dataloader'):  # the FaceID configs have no test set
        lines.append(f'  python tools/test.py {config} {work_dir} --quick')
    lines.append(f'  python tools/plot_loss.py {work_dir}')
    return '\n'.join(lines)


def interrupted(work_dir: str, runner) -> str:
    """What Ctrl-C leaves: the last complete checkpoint (writes are atomic,
    so a save it cut short left the previous one) and how to go on."""
    from ..work_dir import read_pointer

    at = f' at iteration {runner.iter}' if runner is not None else ''
    try:
        checkpoint = read_pointer(work_dir)
    except UserError:
        checkpoint = None
    if checkpoint is None:
        return (
            f'Ctrl-C{at}, before the first checkpoint of {work_dir}: '
            'nothing to resume; run the same command again to start over'
        )
    return (
        f'Ctrl-C{at}; last checkpoint {checkpoint}: continue with the '
        'same command and --resume'
    )


def remove_if_no_checkpoint(work_dir: str) -> None:
    """A run that failed before writing a checkpoint leaves no work dir
    (only its logs, which said nothing the error does not)."""
    import glob
    import shutil

    if osp.isdir(work_dir) and not glob.glob(osp.join(work_dir, '*.pth')):
        shutil.rmtree(work_dir, ignore_errors=True)
