"""Write the shapes world: images a CPU can learn, and its pretrained bases.

    python tools/shapes_world.py [--out work_dirs/shapes_world] [--seed 0]
                                 [--size 32] [--pretrain 6000] [--pairs 3200]
    python tools/shapes_world.py --contact-sheet [--sheet-dir outputs/shapes_world]

Writes ``<out>/pretrain`` (captioned images, "a red circle"), ``<out>/pairs``
(adapter records: the caption names the shape, ``reference_file`` shows the
colour at another position, size and background), ``<out>/heldout`` (54
evaluation references never trained on, an empty prompt) and the bases
pretrained on the world, ``<out>/{sd15,sdxl,sd35,flux}``. Deterministic by
seed; a folder that already holds the same world is reused.
``--contact-sheet`` then writes ``contact_sheet_{sd15,flux}.png``: held-out
references | scale 0 | scale 1, generated as tools/infer.py generates, with
your adapters (``work_dirs/shapes_<family>/ip_adapter.safetensors``) or else
the ones shipped in data/shapes_world/adapters. See docs/shapes_world.md.
"""

from diffengine_ipa.cli import ToolParser
from diffengine_ipa.errors import run_tool


def main() -> None:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default='work_dirs/shapes_world',
        help='the world folder (default: work_dirs/shapes_world)',
    )
    parser.add_argument(
        '--seed', type=int, default=0, help='decides every image (default: 0)'
    )
    parser.add_argument(
        '--size', type=int, default=32, help='image side in pixels (default: 32)'
    )
    parser.add_argument(
        '--pretrain',
        type=int,
        default=6000,
        help='captioned pretraining images (default: 6000)',
    )
    parser.add_argument(
        '--pairs', type=int, default=3200, help='adapter training pairs (default: 3200)'
    )
    parser.add_argument(
        '--no-bases',
        action='store_true',
        help='write the images only, not the bases (default: write both)',
    )
    parser.add_argument(
        '--contact-sheet',
        action='store_true',
        help='then write the SD1.5 and FLUX.1 contact sheets (default: off)',
    )
    parser.add_argument(
        '--sheet-dir',
        default='outputs/shapes_world',
        help='where the contact sheets go (default: outputs/shapes_world)',
    )
    args = parser.parse_args()  # before the heavy imports: --help is instant
    from diffengine_ipa.shapes_world.writer import write_world

    spec = write_world(args.out, args.seed, args.size, args.pretrain, args.pairs)
    state = 'reused' if spec['reused'] else 'wrote'
    print(
        f'{state} {args.out}: {spec["pretrain"]} pretraining images, '
        f'{spec["pairs"]} pairs, {spec["heldout"]} held-out references '
        f'({args.size} px, seed {args.seed})'
    )
    if not args.no_bases:
        from diffengine_ipa.shapes_world.bases import install_bases

        for path in install_bases(args.out):
            print(f'base: {path}')
    if args.contact_sheet:
        from diffengine_ipa.console import quiet_third_party
        from diffengine_ipa.models.model_sources import disable_progress_bars
        from diffengine_ipa.shapes_world.contact_sheet import write_contact_sheets

        quiet_third_party()
        disable_progress_bars()
        written, missing = write_contact_sheets(args.out, args.sheet_dir)
        for path in written:
            print(f'contact sheet: {path}')
        for line in missing:
            print(line)


if __name__ == '__main__':
    run_tool(main)
