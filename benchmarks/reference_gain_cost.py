"""What ``ReferenceGainHook`` costs: its seconds per validation against the
training time between two validations.

    python benchmarks/reference_gain_cost.py CONFIG [--base random:mid_sd15]
        [--resolution 256] [--epochs 5] [--cfg-options ...]

Trains ``--epochs`` epochs of CONFIG, validating after the last, then
times the hook once more (its batch built) and prints one JSON line: the
mean training iteration, the iterations between two validations at the
config's ``val_interval``, the hook's seconds per validation, and ``cost``
= hook / (training between two validations), the figure docs/training.md
quotes; ``cost_of_run`` divides the hook's time in this run (the batch's
loading included) by the whole run (sample generation included).
"""

import argparse
import json
import time

from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from diffengine_ipa.engine.hooks import ReferenceGainHook
from diffengine_ipa.user_config import prepare_config


class TrainTimes(Hook):
    """Wall time of each training iteration (data loading included)."""

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.times, self._start = [], None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._start = time.perf_counter()

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ) -> None:
        self.times.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--base', help='model.pretrained_model_name_or_path')
    parser.add_argument('--image-encoder', help='its image encoder')
    parser.add_argument('--resolution', type=int)
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--work-dir', default='work_dirs/reference_gain_cost')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.base:
        cfg.model.pretrained_model_name_or_path = args.base
    if args.image_encoder:
        cfg.model.image_encoder.pretrained_model_name_or_path = args.image_encoder
    if args.resolution:
        cfg.train_dataloader.dataset.resolution = args.resolution
    val_interval = cfg.train_cfg.val_interval  # the default interval
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = args.epochs
    cfg.work_dir = args.work_dir
    cfg.merge_from_dict(args.cfg_options or {})
    cfg = prepare_config(cfg, args.config)
    runner = Runner.from_cfg(cfg)
    (hook,) = [h for h in runner.hooks if isinstance(h, ReferenceGainHook)]
    spent = []
    measure = hook.after_val_epoch

    def timed(runner, metrics=None):
        start = time.perf_counter()
        measure(runner, metrics)
        spent.append(time.perf_counter() - start)

    hook.after_val_epoch = timed
    times = TrainTimes()
    runner.register_hook(times)
    start = time.perf_counter()
    runner.train()
    total = time.perf_counter() - start
    start = time.perf_counter()  # once more, the batch built: steady state
    measure(runner)
    per_val = time.perf_counter() - start
    iter_time = sum(times.times[1:]) / max(1, len(times.times) - 1)
    between = val_interval * len(runner.train_dataloader)
    print(
        json.dumps(
            dict(
                config=args.config,
                base=cfg.model.pretrained_model_name_or_path,
                iterations=len(times.times),
                validations=len(spent),
                iter_s=round(iter_time, 4),
                iters_per_validation=between,
                hook_s=round(per_val, 3),
                first_hook_s=[round(s, 3) for s in spent],  # the first loads the batch
                cost=round(per_val / (between * iter_time), 4),
                cost_of_run=round(sum(spent) / total, 4),
                run_s=round(total, 1),
            )
        )
    )


if __name__ == '__main__':
    main()
