"""Write the tiny model families as local folders (no download).

    python tools/make_tiny_models.py [--out work_dirs/tiny_models] [--seed 0]
        [--architectures tiny_sd15 tiny_sdxl tiny_sd3 tiny_flux]

Gives ``<out>/<tiny architecture>`` of every registered family (today
``tiny_sd15``, ``tiny_sdxl``, ``tiny_sd3`` and ``tiny_flux``; the list is
the family registry, diffengine_ipa.models.families)
(diffusers folders, like stable-diffusion-v1-5, stable-diffusion-xl-base-1.0,
stable-diffusion-3.5-large and FLUX.1-dev), each with an ``image_encoder/``
(its paired encoder and preprocessor config: CLIP for SD1.5, SDXL and FLUX,
SigLIP at 384 px for SD3), and ``<out>/tiny_clip`` (a CLIPModel that judges
generated images in evaluation), which the tiny configs load through the real
``from_pretrained`` code.
"""

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default='work_dirs/tiny_models',
        help='folder to write them in (default: work_dirs/tiny_models)',
    )
    parser.add_argument(
        '--architectures',
        nargs='+',
        default=None,
        metavar='ARCHITECTURE',
        help="which (default: every family's tiny architecture)",
    )
    parser.add_argument(
        '--seed', type=int, default=0, help='of the random weights (default: 0)'
    )
    args = parser.parse_args()
    from diffengine_ipa.console import quiet_third_party

    quiet_third_party()
    from diffengine_ipa.models.families import FAMILIES
    from diffengine_ipa.models.model_sources import disable_progress_bars
    from diffengine_ipa.models.random_models import write_base_model, write_clip_judge

    tiny = [entry.tiny_architecture for entry in FAMILIES.values()]
    unknown = sorted(set(args.architectures or ()) - set(tiny))
    if unknown:
        parser.error(
            f'argument --architectures: {unknown[0]!r} is not a tiny '
            f'architecture (choose from {", ".join(tiny)})'
        )
    disable_progress_bars()
    for name in args.architectures or tiny:
        base, encoder = write_base_model(name, args.out, args.seed)
        print(f'{name}: base model {base}, image encoder {encoder}')
    print(f'evaluation judge: {write_clip_judge("tiny_clip", args.out, args.seed)}')


if __name__ == '__main__':
    main()
