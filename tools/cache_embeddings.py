"""Precompute the frozen encoders' outputs for a config's training set.

    python tools/cache_embeddings.py CONFIG [--out DIR] [--batch-size 8]
        [--dtype fp32|bf16] [--cfg-options KEY=VALUE ...]

``--dtype`` is the storage precision: by default fp32 for SD1.5/SDXL and bf16
for SD3.5/FLUX.1, whose T5 states make an entry several MB.

Writes to ``--out``, else to the config's
``train_dataloader.dataset.embedding_cache``, else to
``work_dirs/embedding_cache/<config>``. Train from it by setting
``train_dataloader.dataset.embedding_cache`` to that folder (the ``*_fast``
configs do). Entries that exist are kept, so re-running after adding images
only encodes the new ones.
"""

import os
import os.path as osp

from diffengine_ipa.cli import ConfigOptions, ToolParser, int_at_least, output_folder
from diffengine_ipa.dtypes import CACHE_DTYPES
from diffengine_ipa.errors import run_tool


def main() -> None:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config (names the models)')
    parser.add_argument(
        '--out',
        type=output_folder,
        help='cache folder '
        "(default: the config's embedding_cache, else "
        'work_dirs/embedding_cache/<config name>)',
    )
    parser.add_argument(
        '--batch-size',
        type=int_at_least(1),
        default=8,
        help='images encoded at once (default: 8)',
    )
    parser.add_argument(
        '--dtype',
        choices=CACHE_DTYPES,
        help="storage precision (default: the family's; bf16 halves the disk space)",
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=ConfigOptions,
        help='override config entries (default: none)',
    )
    args = parser.parse_args()
    from diffengine_ipa.console import quiet_third_party

    quiet_third_party()
    from diffengine_ipa.apis import build_embedding_cache
    from diffengine_ipa.engine import hardware
    from diffengine_ipa.models.model_sources import disable_progress_bars
    from diffengine_ipa.user_config import load_user_config

    cfg = load_user_config(args.config, args.cfg_options)
    # The frozen weights in the precision training will give them (the
    # cache's fingerprint includes it).
    print('\n'.join(hardware.configure(cfg)))
    name = osp.splitext(osp.basename(args.config))[0]
    folder = (
        args.out
        or cfg.train_dataloader.dataset.get('embedding_cache')
        or osp.join('work_dirs', 'embedding_cache', name)
    )
    disable_progress_bars()
    summary = build_embedding_cache(cfg, folder, args.batch_size, args.dtype)
    size = sum(
        osp.getsize(osp.join(root, f))
        for root, _, files in os.walk(folder)
        for f in files
    )
    per_image = summary['seconds'] / max(summary['written'], 1)
    print(
        f'{folder}: {summary["records"]} records, {summary["written"]} '
        f'encoded now ({per_image:.3f} s/image on {summary["device"]}, '
        f'{summary["dtype"]}, {summary["entry_bytes"] / 2**10:.1f} KiB an '
        f'entry), {size / 2**20:.1f} MiB on disk'
    )


if __name__ == '__main__':
    run_tool(main)
