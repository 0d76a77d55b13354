"""Train an IP-Adapter from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]
                                 [--amp [auto|bf16|fp16|fp32]]
                                 [--auto-scale-lr]
                                 [--cfg-options KEY=VALUE ...]
                                 [--launcher {none,pytorch,slurm,mpi}]

``mim train diffengine_ipa CONFIG ...`` runs this same script; so do
``torchrun --nproc_per_node N tools/train.py CONFIG --launcher pytorch`` and
``mim train diffengine_ipa CONFIG --gpus N --launcher pytorch|slurm``.
"""

import argparse
import contextlib
import os
import os.path as osp
import time

from diffengine_ipa.cli import ConfigOptions, ToolParser, output_folder
from diffengine_ipa.errors import UserError, run_tool

# hardware.AMP_MODES, written out so that --help imports nothing heavy.
AMP_MODES = ('auto', 'bf16', 'fp16', 'fp32')


def parse_args() -> argparse.Namespace:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--work-dir',
        type=output_folder,
        help='where logs and checkpoints go (default: work_dirs/<config name>)',
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CKPT, or from the last checkpoint of the work dir '
        'when no CKPT is given (default: a new run)',
    )
    parser.add_argument(
        '--amp',
        nargs='?',
        const='mixed',
        choices=['mixed', *AMP_MODES],
        help='precision. auto: chosen for this machine (bf16 autocast on '
        'GPUs with bf16 and CPUs with native bf16, fp16 with loss scaling '
        'on older GPUs, else fp32), the frozen weights following; bf16, '
        'fp16, fp32: that one. Bare --amp: fp16 with loss scaling '
        "(MMEngine's AmpOptimWrapper) on CUDA, bf16 autocast elsewhere. "
        'hardware.* in --cfg-options overrides any single choice (default: '
        "the config's precision, fp32 in the shipped configs but *_fast)",
    )
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate linearly with the effective batch size '
        '(batch_size x processes x accumulative_counts) against '
        'auto_scale_lr.base_batch_size (default: off)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=ConfigOptions,
        help='override config entries, e.g. '
        'model.pretrained_model_name_or_path=/path/to/sd15 (default: none)',
    )
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log to TensorBoard, in <work dir>/<time>/vis_data/ '
        "(needs pip install '.[tensorboard]'; default: off)",
    )
    parser.add_argument(
        '--verbose',
        action='store_true',
        help="also print MMEngine's environment report, config dump and "
        'hook table, which go to the log file (default: off)',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher for distributed training (default: none)',
    )
    # torch.distributed.launch passes --local-rank (or --local_rank).
    parser.add_argument(
        '--local_rank',
        '--local-rank',
        type=int,
        default=0,
        help='set by torch.distributed.launch (default: 0)',
    )
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> tuple:
    """The config file with the command line and the hardware settings
    applied, and the report of those settings."""
    from diffengine_ipa.engine import hardware
    from diffengine_ipa.official_format import find_checkpoint
    from diffengine_ipa.user_config import load_user_config
    from diffengine_ipa.work_dir import last_checkpoint

    cfg = load_user_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    settings = hardware.configure(cfg, args.amp)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if args.tensorboard:
        enable_tensorboard(cfg)
    if args.resume == 'auto':  # the work dir's pointer, read relative to it
        cfg.resume, cfg.load_from = True, last_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, find_checkpoint(args.resume)
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
    from diffengine_ipa.work_dir import last_checkpoint

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
    lines += [
        'next:',
        f'  python tools/convert.py {work_dir}',
        f'  python tools/infer.py {config} {work_dir} --image REF.jpg',
        f'  python tools/test.py {config} {work_dir} --quick',
        f'  python tools/plot_loss.py {work_dir}',
    ]
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    from diffengine_ipa.console import memoize_config_formatting, quiet_console

    quiet_console(verbose=args.verbose)
    memoize_config_formatting()
    from diffengine_ipa.models.model_sources import disable_progress_bars
    from diffengine_ipa.work_dir import refuse_fresh_run_over, work_dir_lock

    started = time.monotonic()
    cfg, settings = build_config(args)
    if is_first_process():  # before anything of MMEngine's
        print('\n'.join(settings), flush=True)
    if is_first_process() and not args.resume:
        refuse_fresh_run_over(cfg.work_dir)  # never overwrite an earlier run
    # One training per work dir: a second stops here, before any model loads.
    existed = osp.isdir(cfg.work_dir)
    lock = (
        work_dir_lock(cfg.work_dir) if is_first_process() else contextlib.nullcontext()
    )
    runner = None
    try:
        with lock:
            if args.launcher != 'none':
                use_gloo_without_cuda(cfg, args.launcher)
            disable_progress_bars()
            runner = build_runner(cfg)
            runner.logger.info('Hardware settings:\n' + '\n'.join(settings))
            runner.train()
    except KeyboardInterrupt:  # its logs stay
        raise KeyboardInterrupt(interrupted(cfg.work_dir, runner)) from None
    except (Exception, SystemExit):
        if is_first_process() and not existed:
            remove_if_no_checkpoint(cfg.work_dir)
        raise
    if is_first_process():
        print(summary(runner, args.config, started), flush=True)


def interrupted(work_dir: str, runner) -> str:
    """What Ctrl-C leaves: the last complete checkpoint (writes are atomic,
    so a save it cut short left the previous one) and how to go on."""
    from diffengine_ipa.work_dir import read_pointer

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


if __name__ == '__main__':
    run_tool(main)
