"""Check a dataset's annotation file and images before training.

    python tools/check_dataset.py DATA_JSON [--data-root DIR]
                                  [--min-image-side N]

Runs the check that ``IPAdapterDataset`` runs before training starts: exit 0
when every record is usable, otherwise exit 2 with one line per unusable
record (index, ``image_file``, reason). Image paths are relative to
``--data-root``, or else to the annotation file's folder.
"""
import argparse
import os.path as osp
import time

from diffengine_ipa.cli import ToolParser, int_at_least
from diffengine_ipa.errors import DatasetError, run_tool


def parse_args() -> argparse.Namespace:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_json', help='annotation file (JSON or JSONL)')
    parser.add_argument('--data-root', help='folder image paths are relative '
                        "to (default: the annotation file's folder)")
    parser.add_argument('--min-image-side', type=int_at_least(1), default=64,
                        help='shortest usable image side in pixels '
                        '(default: 64, as IPAdapterDataset)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # The dataset modules import torch: after the arguments parse.
    from diffengine_ipa.datasets import read_records
    from diffengine_ipa.datasets.record_check import (
        check_records,
        describe_bad_records,
    )
    start = time.perf_counter()
    records = read_records(args.data_json)
    if not records:
        raise DatasetError(f'{args.data_json}: no records')
    root = args.data_root or osp.dirname(args.data_json)
    good, bad = check_records(records, root, args.min_image_side)
    if bad:
        raise DatasetError(
            f'{args.data_json}: {len(bad)} of {len(records)} records are '
            'unusable:\n' + describe_bad_records(bad, limit=None))
    print(f'{args.data_json}: all {len(good)} records usable '
          f'(checked in {time.perf_counter() - start:.2f} s)')


if __name__ == '__main__':
    run_tool(main)
