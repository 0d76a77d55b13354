"""Detect, align and embed the faces of a dataset for the FaceID adapters.

    python tools/prepare_faces.py DATA [--out FILE] [--data-root DIR]
        [--largest] [--embedder TYPE] [--embedder-options KEY=VALUE ...]

DATA is any source the kit reads (JSON / JSON Lines, a folder of images with
``.txt`` captions, a Hugging Face dataset folder, ``.parquet`` / ``.arrow``
files with path columns). Writes ``--out`` (default: ``<DATA>_faces.jsonl``
beside DATA): every kept record with its fields, plus ``face_embedding`` (a
``.npy``, float32 (512,), unit length) and ``face_image`` (the aligned
224 x 224 crop, a PNG), stored in ``<out>_files/``. The face is found in the
record's ``reference_file``, else its ``image_file``. A record whose image
has no face, several faces (unless ``--largest``) or cannot be read is left
out, counted and named. A rerun reuses what an unchanged image gave. The
face model: insightface ``buffalo_l`` by default (``pip install .[faces]``;
its files in ``~/.insightface/models/buffalo_l``), or ``--embedder
TinyFaceEmbedder`` (no weights: drawn test faces only), or ``--embedder
ShapesFaceEmbedder`` (the shapes world's one shape, embedded by its CLIP
vision tower: 64-d).
"""

import argparse
import os.path as osp

from diffengine_ipa.cli import ConfigOptions, ToolParser, output_file
from diffengine_ipa.errors import UserError, run_tool


def parse_args() -> argparse.Namespace:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'data',
        help='annotation file (JSON or JSONL), folder of images and '
        'captions, dataset folder or .parquet/.arrow files',
    )
    parser.add_argument(
        '--out',
        type=output_file('.jsonl', '.json'),
        help='the new annotation file, .jsonl or .json '
        '(default: <DATA>_faces.jsonl beside DATA)',
    )
    parser.add_argument(
        '--data-root',
        help="folder image paths are relative to (default: the annotation file's "
        'folder)',
    )
    faces = parser.add_mutually_exclusive_group()
    faces.add_argument(
        '--one-face',
        dest='largest',
        action='store_false',
        default=False,
        help='leave out records whose image has several faces (default)',
    )
    faces.add_argument(
        '--largest',
        action='store_true',
        help='with several faces, keep the largest (default: --one-face)',
    )
    parser.add_argument(
        '--embedder',
        default='InsightFaceEmbedder',
        help='face embedder type (default: InsightFaceEmbedder: insightface '
        'buffalo_l; TinyFaceEmbedder: weightless, for tests; '
        "ShapesFaceEmbedder: the shapes world's shapes)",
    )
    parser.add_argument(
        '--embedder-options',
        nargs='+',
        action=ConfigOptions,
        help='its arguments, e.g. name=antelopev2 root=/models/insightface '
        'det_size=640 (default: none)',
    )
    parser.add_argument(
        '--image-column', default='image', help='for dataset folders (default: image)'
    )
    parser.add_argument(
        '--text-column', default='text', help='for dataset folders (default: text)'
    )
    parser.add_argument(
        '--reference-column',
        help='for dataset folders (default: none: each image is its own reference)',
    )
    return parser.parse_args()


def default_out(data: str) -> str:
    """``data.json`` → ``data_faces.jsonl``; ``photos/`` → ``photos_faces.jsonl``."""
    data = osp.normpath(data)
    stem = data if osp.isdir(data) else osp.splitext(data)[0]
    return stem + '_faces.jsonl'


def main() -> None:
    args = parse_args()
    from tqdm import tqdm

    from diffengine_ipa.datasets.record_check import describe_bad_records
    from diffengine_ipa.datasets.record_sources import FolderRecords, open_source
    from diffengine_ipa.errors import DatasetError
    from diffengine_ipa.faces import build_face_embedder
    from diffengine_ipa.faces.face_preparation import (
        output_paths,
        prepare_faces,
        summary_line,
    )

    data = args.data
    if not osp.exists(data):
        raise DatasetError(f'{data}: no such file or folder')
    out = args.out or default_out(data)
    if osp.abspath(out) == osp.abspath(data):
        raise UserError(f'--out {out}: is DATA itself; name a new file')
    tabular = osp.isdir(data) or data.endswith(('.parquet', '.arrow'))
    columns = dict(
        image_column=args.image_column,
        text_column=args.text_column,
        reference_column=args.reference_column,
    )
    source = open_source(data, args.data_root, **(columns if tabular else {}))
    files = output_paths(out)[1]
    if isinstance(source, FolderRecords) and not osp.relpath(
        files, source.image_root
    ).startswith('..'):
        raise UserError(
            f'--out {out}: its crops would go inside the image folder {data}, '
            'where the next run reads them as images; write it beside the folder'
        )
    embedder = build_face_embedder(
        dict(args.embedder_options or {}, type=args.embedder)
    )
    with tqdm(desc='faces', unit='image', leave=False, disable=None) as bar:
        summary = prepare_faces(source, out, embedder, args.largest, bar.update)
    print(summary_line(data, summary))
    if summary['skipped']:
        print(describe_bad_records(summary['skipped'], limit=None))
    print(f'wrote {out} (embeddings and crops in {summary["folder"]})')


if __name__ == '__main__':
    run_tool(main)
