"""Pretrain the shapes world's tiny bases from scratch (CPU), deterministic
by seed; writes one ``from_pretrained`` folder per part under ``--out``.

    python tools/pretrain_shapes_bases.py --stages text vae clip_vision sd15

Stages, in dependency order: ``text`` (random frozen text encoders),
``vae`` (one for every family but Qwen-Image) ``clip_vision``
``siglip_vision`` (trained on the world), then the denoisers ``sd15`` ``sdxl``
``sd35`` ``flux`` ``chroma`` (each needs its VAE and text encoders),
``flux_kontext`` (FLUX.1's, fine-tuned to recolour a grey input image),
``qwen_vae`` (Qwen-Image's own 3D VAE) and ``qwen_image``, which also
measure their prompted-colour accuracy. ``manifest.json`` records each stage's command,
steps and time.
"""

import argparse
import json
import os
import os.path as osp
import shlex
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

# stage -> steps on 2 CPU cores (the shipped weights' schedule)
STEPS = dict(
    vae=400,
    clip_vision=150,
    siglip_vision=150,
    sd15=1000,
    sdxl=1000,
    sd35=800,
    flux=600,
    chroma=600,
    flux_kontext=1500,  # from flux's weights
    qwen_vae=2000,  # the 3D VAE learns slowly
    qwen_image=1500,
)
POOL = dict(vae=8000, encoder=6000, denoiser=12000)
TEXT_PARTS = ('clip_text', 'clip_text_proj', 'clip_text_proj_2', 't5', 'qwen_text')


def parse_args(argv=None) -> argparse.Namespace:
    shipped = 'data/shapes_world/bases'
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--stages',
        nargs='+',
        default=['all'],
        choices=['all', 'text', *STEPS],
        help='what to train, in dependency order (default: all)',
    )
    parser.add_argument(
        '--seed', type=int, default=0, help='decides every weight (default: 0)'
    )
    parser.add_argument(
        '--out',
        default=None,
        help=f'folder of the parts (default: the shipped {shipped})',
    )
    parser.add_argument(
        '--steps',
        type=int,
        default=None,
        help="override every stage's steps, for tests (default: each stage's own)",
    )
    parser.add_argument(
        '--pool',
        type=int,
        default=None,
        help='override the number of world images, for tests (default: per stage)',
    )
    parser.add_argument(
        '--eval-per-caption',
        type=int,
        default=4,
        help='images per caption for the colour check; 0: none (default: 4)',
    )
    parser.add_argument(
        '--threads', type=int, default=1, help='torch threads (default: 1)'
    )
    args = parser.parse_args(argv)
    if args.out is None:
        from diffengine_ipa.shapes_world import bases

        args.out = bases.SHIPPED
    return args


def run_stage(stage: str, args: argparse.Namespace, log) -> dict:
    from diffengine_ipa.shapes_world import bases, pretrain

    seed = args.seed + list(STEPS).index(stage) + 1 if stage in STEPS else args.seed
    steps = args.steps or STEPS.get(stage, 0)
    if stage == 'text':
        for part in TEXT_PARTS:
            model = bases.build_part(part, args.seed + list(bases.PARTS).index(part))
            bases.save_part(model, part, args.out, half=False)
        return dict()
    kind = (
        'vae'
        if stage.endswith('vae')
        else 'encoder'
        if stage.endswith('vision')
        else 'denoiser'
    )
    pool = pretrain.draw_pool(
        seed, args.pool or POOL[kind], inputs=stage == 'flux_kontext'
    )
    if kind == 'vae':
        model = pretrain.train_vae(stage, pool, steps, seed, log=log)
        bases.save_part(model, stage, args.out)
        keys = ('scaling_factor', 'latents_mean', 'latents_std')
        return {k: model.config[k] for k in keys if k in model.config}
    if kind == 'encoder':
        model = pretrain.train_image_encoder(stage, pool, steps, seed, log=log)
        bases.save_part(model, stage, args.out)
        return dict()
    components = bases.family_components(stage, args.out, denoiser=False)
    init = (
        bases.load_part('flux_transformer', args.out)
        if stage == 'flux_kontext'
        else None
    )
    model = pretrain.train_denoiser(
        stage, components, pool, steps, seed, log=log, init=init
    )
    part = bases.FAMILIES[stage]['denoiser']
    bases.save_part(model, part, args.out)
    if not args.eval_per_caption:
        return dict()
    # judge what ships: the fp16 weights, loaded back in fp32
    components = bases.family_components(stage, args.out)
    pipe = pretrain.make_pipeline(stage, components)
    true_cfg = stage in ('flux', 'flux_kontext', 'qwen_image')
    call = dict(true_cfg_scale=4.0, negative_prompt='') if true_cfg else {}
    result = pretrain.colour_accuracy(stage, pipe, args.eval_per_caption, **call)
    return dict(
        colour_accuracy=result['colour'], shape_accuracy=result['shape'], eval_call=call
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    stages = list(args.stages)
    if 'all' in stages:
        stages = ['text', *STEPS]
    os.makedirs(args.out, exist_ok=True)
    manifest_path = osp.join(args.out, 'manifest.json')
    for stage in stages:
        start = time.perf_counter()

        def log(step: int, loss: float, stage=stage, start=start) -> None:
            if step % 50 == 0:
                print(
                    f'[{stage}] step {step} loss {loss:.4f} '
                    f'{time.perf_counter() - start:.0f}s',
                    flush=True,
                )

        result = run_stage(stage, args, log)
        result.update(
            seconds=round(time.perf_counter() - start, 1),
            steps=args.steps or STEPS.get(stage, 0),
            seed=args.seed,
            command='python tools/pretrain_shapes_bases.py '
            + ' '.join(
                shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
            ),
        )
        print(f'[{stage}] {json.dumps(result)}', flush=True)
        manifest = {}
        if osp.exists(manifest_path):  # re-read: stages may run in parallel
            with open(manifest_path) as f:
                manifest = json.load(f)
        manifest[stage] = result
        with open(manifest_path + '.tmp', 'w') as f:
            json.dump(manifest, f, indent=1)
        os.replace(manifest_path + '.tmp', manifest_path)


if __name__ == '__main__':
    main()
