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

from diffengine_ipa.cli import ConfigOptions, ToolParser, output_folder, parse_launched
from diffengine_ipa.dtypes import AMP_MODES
from diffengine_ipa.errors import run_tool


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
    return parse_launched(parser)


def main() -> None:
    args = parse_args()
    from diffengine_ipa.console import memoize_config_formatting, quiet_console

    quiet_console(verbose=args.verbose)
    memoize_config_formatting()
    from diffengine_ipa.apis.train import train

    train(
        args.config,
        work_dir=args.work_dir,
        resume=args.resume,
        amp=args.amp,
        auto_scale_lr=args.auto_scale_lr,
        tensorboard=args.tensorboard,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
        report=lambda text: print(text, flush=True),
    )


if __name__ == '__main__':
    run_tool(main)
