"""Write the tiny model families as local folders (no download).

    python tools/make_tiny_models.py [--out work_dirs/tiny_models] [--seed 0]
        [--families tiny_sd15 tiny_sdxl] [--image-encoder tiny_clip_vision]

Gives ``<out>/tiny_sd15`` and ``<out>/tiny_sdxl`` (diffusers folders, like
stable-diffusion-v1-5 and stable-diffusion-xl-base-1.0), each with an
``image_encoder/`` (a CLIPVisionModelWithProjection folder), and
``<out>/tiny_clip`` (a CLIPModel that judges generated images in evaluation),
which the tiny configs load through the real ``from_pretrained`` code.
"""
import argparse

from diffengine_ipa.models.model_families import write_clip_judge, write_family
from diffengine_ipa.models.model_sources import disable_progress_bars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='work_dirs/tiny_models')
    parser.add_argument('--families', nargs='+',
                        default=['tiny_sd15', 'tiny_sdxl'])
    parser.add_argument('--image-encoder', default='tiny_clip_vision')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    disable_progress_bars()
    for family in args.families:
        base, encoder = write_family(family, args.image_encoder, args.out,
                                     args.seed)
        print(f'{family}: base model {base}, image encoder {encoder}')
    print(f'evaluation judge: {write_clip_judge("tiny_clip", args.out, args.seed)}')


if __name__ == '__main__':
    main()
