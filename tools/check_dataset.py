"""Check a dataset's records and images before training.

    python tools/check_dataset.py ANN_FILE [--data-root DIR]
                                  [--min-image-side N] [--workers N]
                                  [--image-column C] [--text-column C]
                                  [--reference-column C]

Runs the check that ``IPAdapterDataset`` runs before training starts, on any
source it reads (JSON / JSON Lines, a folder of images with ``.txt``
captions, a Hugging Face dataset folder, ``.parquet`` / ``.arrow`` files):
images in parallel with a progress bar, verdicts cached by file size and
modification time (a second run re-reads only what changed). Exit 0 when
every record is usable, otherwise exit 2 with the counts by problem and one
line per unusable record (index, ``image_file``, reason). Image paths are
relative to ``--data-root``, or else to the annotation file's folder.
"""

import argparse
import os.path as osp
import time

from diffengine_ipa.cli import ToolParser, int_at_least
from diffengine_ipa.errors import DatasetError, run_tool


def parse_args() -> argparse.Namespace:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'data_json',
        help='annotation file (JSON or JSONL), '
        'folder of images and captions, dataset folder or '
        '.parquet/.arrow files',
    )
    parser.add_argument(
        '--data-root',
        help='folder image paths are relative '
        "to (default: the annotation file's folder)",
    )
    parser.add_argument(
        '--min-image-side',
        type=int_at_least(1),
        default=64,
        help='shortest usable image side in pixels (default: 64, as IPAdapterDataset)',
    )
    parser.add_argument(
        '--workers',
        type=int_at_least(1),
        help='processes that check images (default: up to 8)',
    )
    parser.add_argument(
        '--image-column',
        default='image',
        help='column of the images, for a dataset folder or '
        '.parquet/.arrow files (default: image)',
    )
    parser.add_argument(
        '--text-column', default='text', help='column of the captions (default: text)'
    )
    parser.add_argument(
        '--reference-column',
        help='column of the references (default: none: each '
        'image is its own reference)',
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # The dataset modules import torch: after the arguments parse.
    from diffengine_ipa.datasets.record_check import (
        count_problems,
        describe_bad_records,
    )
    from diffengine_ipa.datasets.record_index import RecordIndex
    from diffengine_ipa.datasets.record_sources import open_source

    start = time.perf_counter()
    ann = args.data_json
    if not osp.exists(ann):
        raise DatasetError(
            f'{ann}: cannot read the annotation file (No such file or directory)'
        )
    columns = dict(
        image_column=args.image_column,
        text_column=args.text_column,
        reference_column=args.reference_column,
    )
    tabular = osp.isdir(ann) or ann.endswith(('.parquet', '.arrow'))
    source = open_source(ann, args.data_root, **(columns if tabular else {}))
    index = RecordIndex.open(source, args.min_image_side, workers=args.workers)
    bad = index.bad_records()
    if bad:
        counts = ', '.join(f'{kind}: {n}' for kind, n in count_problems(bad).items())
        raise DatasetError(
            f'{ann}: {len(bad)} of {index.total} records are unusable '
            f'({counts}):\n' + describe_bad_records(bad, limit=None)
        )
    print(
        f'{ann}: all {len(index)} records usable '
        f'(checked in {time.perf_counter() - start:.2f} s)'
    )


if __name__ == '__main__':
    run_tool(main)
