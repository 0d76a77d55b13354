"""Generate images with a trained IP-Adapter.

    python tools/infer.py CONFIG CKPT --image ref.jpg [--prompt TEXT]
        [--negative-prompt TEXT] [--scale 1.0] [--steps 50]
        [--guidance-scale 7.5] [--seed 0] [--num-images 1]
        [--height H --width W] [--out PATH] [--cfg-options ...]

CKPT is a training checkpoint, a work dir (its last checkpoint), a
converted or published ``.safetensors``/``.bin``, or a checkpoint-N folder of
the official tutorial_train*.py scripts. CONFIG names the model family, base
model and image encoder. The image comes from the family's plain diffusers
pipeline (StableDiffusion(XL)Pipeline, StableDiffusion3Pipeline, FluxPipeline)
with the adapter loaded by ``load_ip_adapter``; the safety checker is not
loaded. Steps, guidance, negative prompt and size default to the config's
``model.generation_cfg``, else the family's defaults.
"""
import argparse
import os.path as osp

import torch
from PIL import Image

from diffengine_ipa.apis import build_pipeline, generation_settings
from diffengine_ipa.cli import (
    ConfigOptions,
    ToolParser,
    check_device,
    check_image_size,
    float_at_least,
    int_at_least,
    output_image,
    seed,
)
from diffengine_ipa.dtypes import DTYPE_NAMES, to_dtype
from diffengine_ipa.errors import run_tool
from diffengine_ipa.fileio import atomic_path
from diffengine_ipa.image_io import read_rgb_image
from diffengine_ipa.models.model_sources import disable_progress_bars
from diffengine_ipa.registry import MODELS
from diffengine_ipa.user_config import load_user_config


def parse_args() -> argparse.Namespace:
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config (names the models)')
    parser.add_argument('checkpoint', help='checkpoint, work dir or adapter')
    parser.add_argument('--image', required=True, help='reference image')
    parser.add_argument('--prompt', default='best quality, high quality')
    parser.add_argument('--negative-prompt',
                        help="default: the config's or family's")
    parser.add_argument('--scale', type=float_at_least(0), default=1.0,
                        help='image-prompt strength (0 = text only)')
    parser.add_argument('--steps', type=int_at_least(1),
                        help="denoising steps (default: the config's or "
                        "family's: 30 SD1.5/SDXL, 28 SD3.5/FLUX.1)")
    parser.add_argument('--guidance-scale', type=float_at_least(0),
                        help="default: the config's or family's (7.5 SD, "
                        '7.0 SD3.5, 3.5 FLUX.1 distilled guidance)')
    parser.add_argument('--seed', type=seed, default=0)
    parser.add_argument('--num-images', type=int_at_least(1), default=1)
    parser.add_argument('--height', type=int_at_least(1),
                        help='a multiple of 8 (SD1.5/SDXL) or 16 (SD3.5, '
                        'FLUX.1)')
    parser.add_argument('--width', type=int_at_least(1))
    parser.add_argument('--out', type=output_image,
                        help='output image (.png, .jpg, ...; default: '
                        'outputs/infer/<reference>_seed<seed>.png)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--dtype', choices=DTYPE_NAMES,
                        help="default: the family's on CUDA (fp16 SD1.5/SDXL, "
                        'bf16 SD3.5/FLUX.1), fp32 on a CPU')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions,
                        help='override config entries')
    return parser.parse_args()


def output_paths(args: argparse.Namespace) -> list[str]:
    """One file per image; the default named after the reference file."""
    out = args.out or osp.join(
        'outputs', 'infer',
        f'{osp.splitext(osp.basename(args.image))[0]}_seed{args.seed}.png')
    if args.num_images == 1:
        return [out]
    stem, ext = osp.splitext(out)
    return [f'{stem}_{i}{ext}' for i in range(args.num_images)]


def main() -> None:
    args = parse_args()
    check_device(args.device)
    cfg = load_user_config(args.config, args.cfg_options)
    family = MODELS.get(cfg.model.get('family', dict(type='SD15'))['type'])
    dtype = to_dtype(args.dtype or (family.inference_dtype if
                                    args.device.startswith('cuda') else 'fp32'))
    reference = read_rgb_image(args.image)
    settings = generation_settings(
        cfg.model, steps=args.steps, guidance_scale=args.guidance_scale,
        negative_prompt=args.negative_prompt, height=args.height,
        width=args.width)
    check_image_size(settings['height'], settings['width'],
                     family.size_multiple, family.__name__)
    paths = output_paths(args)
    disable_progress_bars()
    pipe = build_pipeline(cfg.model, args.checkpoint, args.device, dtype)
    images = pipe(reference, args.prompt, settings['negative_prompt'],
                  args.scale, settings['steps'], settings['guidance_scale'],
                  args.seed, args.num_images, settings['height'],
                  settings['width'])
    for image, path in zip(images, paths, strict=True):
        with atomic_path(path) as tmp:
            image.save(tmp, format=Image.registered_extensions()[
                osp.splitext(path)[1].lower()])
        print(f'wrote {path}')


if __name__ == '__main__':
    run_tool(main)
