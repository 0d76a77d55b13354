"""Generate images with trained IP-Adapters (any family), from the command line.

    python tools/infer.py CONFIG CKPT --image REF[,REF...] [--image ...]
        [--input-image IMG (FLUX.1 Kontext)]
        [--face FACE.jpg [--face-embedder TYPE] | --face-embeds EMB.npy
        [--face-image CROP]] [--s-scale S] [--lora-scale L] (FaceID)
        [--adapter PATH[:SCALE][@ENCODER] ...] [--prompt TEXT]
        [--negative-prompt TEXT] [--scale S | S,S | style | layout | JSON]
        [--negative-image IMG[,IMG]] [--mask MASK[,MASK]] [--embeds FILE]
        [--save-embeds FILE] [--base-model PATH] [--controlnet PATH
        --control-image IMG [--control-scale 1.0]] [--jobs JOBS.jsonl]
        [--steps N] [--guidance-scale G] [--true-cfg-scale T (FLUX)]
        [--seed 0] [--num-images 1]
        [--height H --width W] [--out PATH | --out-dir DIR] [--device D]
        [--dtype fp32|fp16|bf16] [--cfg-options ...]

CKPT (and each ``--adapter``) is a training checkpoint, a work dir, a
converted or published file, or an official script's checkpoint-N folder.
CONFIG names the family (and so its pipeline), the base model and the image
encoder; steps, guidance, negative prompt and size default to its
``model.generation_cfg``, else the family's. Each ``--image`` gives one
adapter's references (commas between several), in adapter order; so do
``--negative-image`` and ``--mask``. ``--input-image`` is the image a FLUX.1
Kontext config edits (resized to the generated size). A FaceID config takes
``--face`` (one face, detected and embedded by the face embedder the data
was prepared with) or ``--face-embeds`` (``--face-image``: the crop for
Plus/PlusV2), ``--s-scale`` (PlusV2) and ``--lora-scale``. The images come from
the family's plain diffusers pipeline with the adapters loaded by
``load_ip_adapter``; the safety checker is not loaded. ``--jobs`` runs one
generation per line of a JSON Lines file (see diffengine_ipa.apis.batch_jobs)
and writes a contact sheet.
"""

import argparse
import sys

from diffengine_ipa.cli import (
    ConfigOptions,
    ToolParser,
    float_at_least,
    int_at_least,
    output_folder,
    output_image,
    seed,
)
from diffengine_ipa.dtypes import DTYPE_NAMES


def parse_args() -> argparse.Namespace:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config (names the models)')
    parser.add_argument('checkpoint', help='checkpoint, work dir or adapter')
    parser.add_argument(
        '--adapter',
        action='append',
        default=[],
        help='another adapter: PATH[:SCALE][@ENCODER] (ENCODER '
        'a Hub id or folder, //SUBFOLDER after it; default: '
        'CKPT only)',
    )
    parser.add_argument(
        '--image',
        action='append',
        help="an adapter's reference image(s), commas between "
        '(default: none; give --image, --embeds or --jobs)',
    )
    parser.add_argument(
        '--input-image',
        help='FLUX.1 Kontext: the image to edit, resized to the '
        'generated size (default: none, text to image)',
    )
    parser.add_argument(
        '--prompt',
        default='best quality, high quality',
        help="the text prompt (default: 'best quality, high quality')",
    )
    parser.add_argument(
        '--negative-prompt', help="default: the config's or the family's"
    )
    parser.add_argument(
        '--scale',
        default=None,
        help='image-prompt strength: a number (0 = text only), '
        'one per adapter (0.6,0.8), a preset (style, layout, '
        'style_and_layout: SDXL) or per-block JSON (default: '
        "1.0, or each --adapter's)",
    )
    parser.add_argument(
        '--negative-image',
        action='append',
        help='images whose features are the unconditional '
        "image prompt, per adapter (default: the family's "
        'null image prompt)',
    )
    parser.add_argument(
        '--mask',
        action='append',
        help='region masks, one per reference, per adapter '
        '(default: none, the whole image)',
    )
    parser.add_argument(
        '--embeds',
        help='precomputed image embeddings '
        '(.safetensors from --save-embeds) instead of --image '
        '(default: none)',
    )
    parser.add_argument(
        '--face',
        help='FaceID: a photo with one face, detected, aligned and embedded '
        'by --face-embedder (the embedding, and the crop for Plus/PlusV2; '
        'default: none)',
    )
    parser.add_argument(
        '--face-embeds',
        help='FaceID: a saved face embedding (.npy, (512,) or (N, 512), as '
        'tools/prepare_faces.py writes) instead of --face (default: none)',
    )
    parser.add_argument(
        '--face-image',
        help='FaceID-Plus/PlusV2 with --face-embeds: the aligned face crop '
        '(default: none)',
    )
    parser.add_argument(
        '--face-embedder',
        default='InsightFaceEmbedder',
        help='the face embedder --face uses, as the data was prepared '
        '(default: InsightFaceEmbedder, buffalo_l)',
    )
    parser.add_argument(
        '--s-scale',
        type=float,
        help="FaceID-PlusV2's shortcut scale (default: 1.0)",
    )
    parser.add_argument(
        '--lora-scale',
        type=float,
        default=1.0,
        help='FaceID: strength of the UNet attention LoRA (default: 1.0)',
    )
    parser.add_argument(
        '--save-embeds',
        help="save the references' image "
        'embeddings to this .safetensors (default: not saved)',
    )
    parser.add_argument(
        '--base-model',
        help='another base checkpoint of the '
        'family: folder, Hub id or single .safetensors '
        "(default: the config's)",
    )
    parser.add_argument(
        '--controlnet', help='a ControlNet of the family (default: none)'
    )
    parser.add_argument(
        '--control-image', help="the ControlNet's condition (default: none)"
    )
    parser.add_argument(
        '--control-scale',
        type=float_at_least(0),
        default=1.0,
        help='ControlNet conditioning scale (default: 1.0)',
    )
    parser.add_argument(
        '--jobs',
        help='JSON Lines file, one generation a line '
        '(default: one generation from the flags)',
    )
    parser.add_argument(
        '--steps',
        type=int_at_least(1),
        help="denoising steps (default: the config's or "
        "family's: 30 SD1.5/SDXL, 28 SD3.5/FLUX.1)",
    )
    parser.add_argument(
        '--guidance-scale',
        type=float_at_least(0),
        help="default: the config's or family's (7.5 SD, "
        '7.0 SD3.5, 3.5 FLUX.1 distilled guidance)',
    )
    parser.add_argument(
        '--true-cfg-scale',
        type=float_at_least(0),
        help='FLUX-type bases: true CFG against '
        "--negative-prompt (give '' for the empty prompt) and "
        "the negative image embedding, as FluxPipeline's "
        "true_cfg_scale, e.g. 4.0 (default: the config's, "
        'else off)',
    )
    parser.add_argument('--seed', type=seed, default=0, help='random seed (default: 0)')
    parser.add_argument(
        '--num-images',
        type=int_at_least(1),
        default=1,
        help='images per prompt (default: 1)',
    )
    parser.add_argument(
        '--height',
        type=int_at_least(1),
        help='a multiple of 8 (SD1.5/SDXL) or 16 (SD3.5, '
        "FLUX.1), with --width (default: the config's, else "
        "the base model's)",
    )
    parser.add_argument(
        '--width', type=int_at_least(1), help='with --height (default: as --height)'
    )
    parser.add_argument(
        '--out',
        type=output_image,
        help='output image (.png, .jpg, ...; default: '
        'outputs/infer/<reference>_seed<seed>.png)',
    )
    parser.add_argument(
        '--out-dir',
        type=output_folder,
        help='with --jobs: where images go (default: outputs/jobs/<jobs file name>)',
    )
    parser.add_argument('--device', help='default: CUDA, MPS or the CPU')
    parser.add_argument(
        '--dtype',
        choices=DTYPE_NAMES,
        help="default: the family's on CUDA (fp16 SD1.5/SDXL, "
        'bf16 SD3.5/FLUX.1), fp32 elsewhere',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=ConfigOptions,
        help='override config entries (default: none)',
    )
    args = parser.parse_args()
    if not (args.image or args.embeds or args.jobs or args.face or args.face_embeds):
        parser.error('give --image, --embeds, --face, --face-embeds or --jobs')
    if args.face and args.face_embeds:
        parser.error('give --face or --face-embeds, not both')
    if (args.height is None) != (args.width is None):
        parser.error(
            "give --height and --width together (or neither: the config's size)"
        )
    if args.controlnet and not (args.control_image or args.jobs):
        parser.error('--controlnet needs --control-image')
    return args


def main() -> None:
    args = parse_args()  # before the heavy imports: --help is instant
    from diffengine_ipa.console import quiet_third_party

    quiet_third_party()
    from diffengine_ipa.apis import GenerationRequest, generate_files

    summary = generate_files(GenerationRequest(**vars(args))).jobs
    if summary is not None:  # --jobs: the run, then each line that failed
        print(
            f'\nwrote {len(summary["images"])} images and '
            f'{summary["contact_sheet"]} for {summary["jobs"]} jobs'
        )
        for error in summary['errors']:
            print(f'error: {error}', file=sys.stderr)
        if summary['errors']:
            raise SystemExit(2)


if __name__ == '__main__':
    from diffengine_ipa.errors import run_tool

    run_tool(main)
