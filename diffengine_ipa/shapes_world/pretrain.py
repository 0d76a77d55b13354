"""Pretrain the shapes world's tiny bases from scratch on a CPU.

Four stages, each a plain loop over images drawn from the world (seeded):

- :func:`train_vae`: a VAE (reconstruction + a light KL); its scale (and,
  16-channel, shift) set so the latents have zero mean and unit std.
- :func:`train_image_encoder`: a vision tower with two linear heads (hue,
  shape) on its pooled/projected embedding and on the mean of its
  penultimate states (what IP-Adapter Plus reads); the heads are discarded.
- :func:`train_denoiser`: a family's UNet / transformer on the VAE's latents,
  conditioned by the family pipeline's own ``encode_prompt`` of the caption
  (random frozen text encoders), the caption dropped 10 % of the time so
  classifier-free guidance works: ε-prediction for SD1.5 / SDXL, rectified
  flow for SD3.5 / FLUX.1 / Chroma (:mod:`diffengine_ipa.models.objectives`);
  FLUX.1 Kontext's fine-tuned from FLUX.1's to recolour an input image (the
  scene in grey, :func:`world.uncoloured`) as its caption says.
- :func:`colour_accuracy`: generate "a <hue> <shape>" with the family's
  diffusers pipeline and read the colour back with :func:`world.classify`.
"""

import copy
from collections.abc import Callable, Iterable
from itertools import product

import numpy as np
import torch
import torch.nn.functional as F

from . import bases, world

__all__ = [
    'CAPTIONS',
    'Pool',
    'draw_pool',
    'train_vae',
    'train_image_encoder',
    'train_denoiser',
    'colour_accuracy',
    'make_pipeline',
]

CAPTIONS = [world.colour_caption(h, s) for h, s in product(world.HUES, world.SHAPES)]
_HUES, _SHAPES = list(world.HUES), list(world.SHAPES)
# FluxPipeline's default distilled guidance, fed to the transformer in
# training as the kit's adapter training does (it is not distilled here).
FLUX_GUIDANCE = 3.5
# Families whose pipelines take max_sequence_length (T5); rectified flow.
T5_FAMILIES = ('sd35', 'flux', 'chroma', 'flux_kontext', 'qwen_image')


class Pool:
    """Images of the world: ``pixels`` (N, 3, H, W) in [-1, 1], ``hue`` and
    ``shape`` (N, ) label indices, ``caption`` (N, ) indices of CAPTIONS;
    ``inputs`` (N, 3, H, W): the same scenes in grey, or None."""

    def __init__(
        self,
        pixels: torch.Tensor,
        hue: torch.Tensor,
        shape: torch.Tensor,
        inputs: torch.Tensor | None = None,
    ) -> None:
        self.pixels, self.hue, self.shape = pixels, hue, shape
        self.inputs = inputs
        self.caption = hue * len(_SHAPES) + shape

    def __len__(self) -> int:
        return len(self.hue)

    def images(self, index: torch.Tensor) -> list:
        from PIL import Image

        array = ((self.pixels[index] + 1) * 127.5).round().clamp(0, 255)
        array = array.byte().permute(0, 2, 3, 1).numpy()
        return [Image.fromarray(a) for a in array]


def draw_pool(seed: int, count: int, stream: int = 10, inputs: bool = False) -> Pool:
    """``count`` random scenes of the world (own random stream of ``seed``);
    with ``inputs``, each also in grey (:func:`world.uncoloured`)."""
    rng = np.random.default_rng([seed, stream])
    pixels, greys, hues, shapes = [], [], [], []
    for _ in range(count):
        scene = world.sample_scene(rng)
        pixels.append(np.asarray(world.render(scene)))
        if inputs:
            greys.append(np.asarray(world.render(world.uncoloured(scene))))
        hues.append(_HUES.index(scene.hue))
        shapes.append(_SHAPES.index(scene.shape))

    def tensor(images: list) -> torch.Tensor:
        array = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        return array.float() / 127.5 - 1

    return Pool(
        tensor(pixels),
        torch.tensor(hues),
        torch.tensor(shapes),
        tensor(greys) if inputs else None,
    )


def _schedule(
    optimizer: torch.optim.Optimizer, steps: int, warmup: int = 50
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up (at most a fifth of the steps), then cosine decay to
    10 %."""
    import math

    warmup = max(1, min(warmup, steps // 5))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    clip: Iterable[torch.Tensor] | None = None,
) -> None:
    """One optimiser step on ``loss`` (the gradients of ``clip`` clipped to
    norm 1 first), then one of the learning-rate schedule."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(clip, 1.0)
    optimizer.step()
    scheduler.step()


def train_vae(
    part: str,
    pool: Pool,
    steps: int,
    seed: int = 0,
    batch_size: int = 32,
    lr: float = 2e-3,
    kl_weight: float = 1e-4,
    log: Callable[[int, float], None] | None = None,
):
    """Train a VAE of :data:`bases.PARTS` from scratch; returns it with its
    ``scaling_factor`` from its latents' statistics (``shift_factor`` 0)."""
    torch.manual_seed(seed)
    vae = bases.build_part(part, seed).train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    scheduler = _schedule(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        index = torch.randint(0, len(pool), (batch_size,), generator=generator)
        x = pool.pixels[index]
        posterior = vae.encode(_frames(vae, x)).latent_dist
        recon = _frames(vae, vae.decode(posterior.sample(generator)).sample, False)
        loss = (
            F.mse_loss(recon, x)
            + 0.5 * F.l1_loss(recon, x)
            + kl_weight * posterior.kl().mean()
        )
        _step(loss, optimizer, scheduler, clip=vae.parameters())
        if log is not None:
            log(step, loss.item())
    vae.eval()
    with torch.no_grad():
        latents = _encode(vae, pool.pixels[:4096], generator)
    if _is_3d(vae):  # Qwen-Image normalises per channel
        vae.register_to_config(
            latents_mean=latents.mean((0, 2, 3)).tolist(),
            latents_std=latents.std((0, 2, 3)).tolist(),
        )
        return vae
    # shift 0 (SD1.5 / SDXL pipelines have none; the KL keeps the mean
    # near 0), scale: unit second moment
    vae.register_to_config(
        shift_factor=0.0, scaling_factor=float(1 / latents.square().mean().sqrt())
    )
    return vae


def _is_3d(vae) -> bool:
    """A video-shaped VAE (Qwen-Image's): images go in as one frame."""
    return type(vae).__name__ == 'AutoencoderKLQwenImage'


def _frames(vae, x: torch.Tensor, into: bool = True) -> torch.Tensor:
    """(B, C, H, W) to one frame (B, C, 1, H, W) for a 3D VAE, or back."""
    if not _is_3d(vae):
        return x
    return x[:, :, None] if into else x[:, :, 0]


def train_image_encoder(
    part: str,
    pool: Pool,
    steps: int,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
    log: Callable[[int, float], None] | None = None,
):
    """Train a vision tower to tell the world's hues and shapes apart, through
    its own preprocessor; returns the tower (the heads are dropped)."""
    torch.manual_seed(seed)
    model = bases.build_part(part, seed).train()
    processor = bases.image_processor(part)
    pixels = processor(
        images=pool.images(torch.arange(len(pool))), return_tensors='pt'
    ).pixel_values
    pooled_dim = (
        getattr(model.config, 'projection_dim', None) or model.config.hidden_size
    )
    heads = torch.nn.ModuleList(
        [
            torch.nn.Linear(pooled_dim, len(_HUES) + len(_SHAPES)),
            torch.nn.Linear(model.config.hidden_size, len(_HUES) + len(_SHAPES)),
        ]
    )
    params = list(model.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr)
    scheduler = _schedule(optimizer, steps, warmup=20)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        index = torch.randint(0, len(pool), (batch_size,), generator=generator)
        output = model(pixel_values=pixels[index], output_hidden_states=True)
        pooled = (
            output.image_embeds
            if hasattr(output, 'image_embeds')
            else output.pooler_output
        )
        states = output.hidden_states[-2].mean(1)
        loss = 0.0
        for head, features in zip(heads, (pooled, states), strict=True):
            logits = head(features)
            loss = loss + F.cross_entropy(logits[:, : len(_HUES)], pool.hue[index])
            loss = loss + F.cross_entropy(logits[:, len(_HUES) :], pool.shape[index])
        _step(loss, optimizer, scheduler)
        if log is not None:
            log(step, loss.item())
    return model.eval()


def make_pipeline(family: str, components: dict):
    """The family's diffusers pipeline from components (no image encoder)."""
    import diffusers

    from ..models.generation import make_pipeline as _make

    cls = getattr(diffusers, bases.FAMILIES[family]['pipeline'])
    return _make(cls, dict(components, image_encoder=None, feature_extractor=None))


@torch.no_grad()
def encode_captions(family: str, pipe) -> dict[str, torch.Tensor]:
    """The pipeline's own text conditioning of CAPTIONS + [''] (last row)."""
    prompts = CAPTIONS + ['']
    if family == 'sd15':
        embeds = pipe.encode_prompt(prompts, 'cpu', 1, False)[0]
        return dict(encoder_hidden_states=embeds)
    if family == 'sdxl':
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompts,
            device='cpu',
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
        )
        return dict(encoder_hidden_states=embeds, text_embeds=pooled)
    if family == 'sd35':
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompts,
            None,
            None,
            device='cpu',
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
            max_sequence_length=bases.MAX_SEQUENCE_LENGTH,
        )
        return dict(encoder_hidden_states=embeds, pooled_projections=pooled)
    if family == 'qwen_image':
        embeds, mask = pipe.encode_prompt(
            prompts, device='cpu', max_sequence_length=bases.MAX_SEQUENCE_LENGTH
        )
        return dict(encoder_hidden_states=embeds, encoder_hidden_states_mask=mask)
    if family == 'chroma':
        embeds, _, mask, _, _, _ = pipe.encode_prompt(
            prompt=prompts,
            device='cpu',
            do_classifier_free_guidance=False,
            max_sequence_length=bases.MAX_SEQUENCE_LENGTH,
        )
        return dict(encoder_hidden_states=embeds, attention_mask=mask)
    embeds, pooled, _ = pipe.encode_prompt(
        prompts, None, device='cpu', max_sequence_length=bases.MAX_SEQUENCE_LENGTH
    )
    return dict(encoder_hidden_states=embeds, pooled_projections=pooled)


def _condition(
    family: str,
    texts: dict,
    caption: torch.Tensor,
    generator: torch.Generator,
    drop: float,
) -> dict:
    """Per-sample text conditioning; dropped captions become the pipeline's
    unconditional input ('' encoded; SDXL: zeros, as it forces for an empty
    negative prompt, or '' half as often, the adapters' empty prompt)."""
    u = torch.rand(len(caption), generator=generator)
    index = torch.where(u < drop, len(CAPTIONS), caption)
    out = {k: v[index] for k, v in texts.items()}
    if family == 'sdxl':
        zero = u < drop * 2 / 3
        for value in out.values():
            value[zero] = 0
    return out


def _denoise(
    family: str, model, noisy: torch.Tensor, timesteps: torch.Tensor, cond: dict
) -> torch.Tensor:
    """The denoiser's prediction, called as the family's pipeline calls it
    (Kontext: ``cond['input_latents']``' tokens follow the noisy ones)."""
    from diffusers import ChromaPipeline, FluxPipeline

    batch = noisy.shape[0]
    if family == 'sd15':
        return model(noisy, timesteps, **cond).sample
    if family == 'sdxl':
        size = world.DEFAULT_SIZE
        time_ids = torch.tensor(
            [[size, size, 0, 0, size, size]] * batch, dtype=noisy.dtype
        )
        return model(
            noisy,
            timesteps,
            cond['encoder_hidden_states'],
            added_cond_kwargs=dict(text_embeds=cond['text_embeds'], time_ids=time_ids),
        ).sample
    if family == 'sd35':
        return model(hidden_states=noisy, timestep=timesteps, **cond).sample
    _, channels, height, width = noisy.shape
    if family == 'qwen_image':
        from diffusers import QwenImagePipeline

        packed = QwenImagePipeline._pack_latents(noisy, batch, channels, height, width)
        prediction = model(
            hidden_states=packed,
            timestep=timesteps / 1000,
            img_shapes=[[(1, height // 2, width // 2)]] * batch,
            return_dict=False,
            **cond,
        )[0]
        return QwenImagePipeline._unpack_latents(prediction, height * 4, width * 4, 4)[
            :, :, 0
        ]
    packed = FluxPipeline._pack_latents(noisy, batch, channels, height, width)
    tokens = packed.shape[1]
    image_ids = FluxPipeline._prepare_latent_image_ids(
        batch, height // 2, width // 2, noisy.device, noisy.dtype
    )
    if 'input_latents' in cond:  # FluxKontextPipeline's sequence and ids
        given = FluxPipeline._pack_latents(
            cond['input_latents'], batch, channels, height, width
        )
        given_ids = image_ids.clone()
        given_ids[..., 0] = 1
        packed = torch.cat([packed, given], dim=1)
        image_ids = torch.cat([image_ids, given_ids])
    states = cond['encoder_hidden_states']
    text_ids = torch.zeros(states.shape[1], 3, dtype=noisy.dtype)
    call = dict(
        hidden_states=packed,
        timestep=timesteps / 1000,
        encoder_hidden_states=states,
        txt_ids=text_ids,
        img_ids=image_ids,
    )
    if family == 'chroma':
        call['attention_mask'] = ChromaPipeline._prepare_attention_mask(
            None,
            batch,
            tokens,
            noisy.dtype,
            attention_mask=cond['attention_mask'].to(noisy.dtype),
        )
    else:
        call.update(
            guidance=torch.full((batch,), FLUX_GUIDANCE),
            pooled_projections=cond['pooled_projections'],
        )
    prediction = model(**call).sample[:, :tokens]
    return FluxPipeline._unpack_latents(prediction, height * 2, width * 2, 2)


def _encode(
    vae, pixels: torch.Tensor, generator: torch.Generator, mode: bool = False
) -> torch.Tensor:
    parts = []
    for i in range(0, len(pixels), 256):
        dist = vae.encode(_frames(vae, pixels[i : i + 256])).latent_dist
        parts.append(
            _frames(vae, dist.mode() if mode else dist.sample(generator), False)
        )
    return torch.cat(parts)


@torch.no_grad()
def encode_pool(
    vae, pool: Pool, generator: torch.Generator, mode: bool = False
) -> torch.Tensor:
    """The pool's latents as the pipelines see them (shifted, scaled); with
    ``mode``, its input images' (the distribution's mode, as
    FluxKontextPipeline encodes an input image)."""
    latents = _encode(vae, pool.inputs if mode else pool.pixels, generator, mode)
    if _is_3d(vae):
        shape = (1, -1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape)
        return (latents - mean) / torch.tensor(vae.config.latents_std).view(shape)
    shift = vae.config.shift_factor or 0.0
    return (latents - shift) * vae.config.scaling_factor


def train_denoiser(
    family: str,
    components: dict,
    pool: Pool,
    steps: int,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 1e-3,
    drop: float = 0.1,
    ema_decay: float = 0.995,
    log: Callable[[int, float], None] | None = None,
    init: torch.nn.Module | None = None,
):
    """Train the family's denoiser (in ``components``, replaced by its EMA)
    on ``pool``, from scratch or from ``init``; returns the EMA model. A pool
    with ``inputs`` conditions on them (FLUX.1 Kontext)."""
    from diffusers.training_utils import compute_density_for_timestep_sampling

    from ..models.objectives import NoisePrediction, RectifiedFlow

    spec = bases.FAMILIES[family]
    name = 'unet' if 'unet' in spec['parts'] else 'transformer'
    torch.manual_seed(seed)
    model = init if init is not None else bases.build_part(spec['denoiser'], seed)
    model = model.train()
    if name == 'unet':  # CPU: bmm attention beats SDPA's at these shapes
        from diffusers.models.attention_processor import AttnProcessor

        model.set_attn_processor(AttnProcessor())
    components = dict(components, **{name: model})
    pipe = make_pipeline(family, components)
    texts = encode_captions(family, pipe)
    generator = torch.Generator().manual_seed(seed)
    latents = encode_pool(components['vae'], pool, generator)
    given = None
    if pool.inputs is not None:  # the pipeline encodes the input's mode
        given = encode_pool(components['vae'], pool, generator, mode=True)
    config = dict(pipe.scheduler.config)
    flow = family in T5_FAMILIES
    objective = RectifiedFlow(config) if flow else NoisePrediction(config)
    scheme = 'logit_normal' if family == 'sd35' else 'none'
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    scheduler = _schedule(optimizer, steps)
    for step in range(1, steps + 1):
        index = torch.randint(0, len(pool), (batch_size,), generator=generator)
        x0 = latents[index]
        noise = torch.randn(x0.shape, generator=generator)
        if flow:
            u = compute_density_for_timestep_sampling(
                scheme, batch_size, logit_mean=0.0, logit_std=1.0, generator=generator
            )
            timesteps = objective.scheduler.timesteps[(u * 1000).long().clamp(max=999)]
        else:
            timesteps = torch.randint(0, 1000, (batch_size,), generator=generator)
        noisy = objective.add_noise(x0, noise, timesteps)
        cond = _condition(family, texts, pool.caption[index], generator, drop)
        if given is not None:
            cond['input_latents'] = given[index]
        prediction = _denoise(family, model, noisy, timesteps, cond)
        loss = objective.loss(prediction, x0, noise, noisy, timesteps)
        _step(loss, optimizer, scheduler, clip=model.parameters())
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        if log is not None:
            log(step, loss.item())
    return ema


@torch.no_grad()
def colour_accuracy(
    family: str, pipe, per_caption: int = 4, seed: int = 0, **call
) -> dict:
    """Generate every caption ``per_caption`` times with ``pipe`` (20 steps,
    the pipeline's default guidance unless ``call`` says otherwise) and read
    colour and shape back with the world's classifier."""
    prompts = [c for c in CAPTIONS for _ in range(per_caption)]
    size = world.DEFAULT_SIZE
    kwargs = dict(
        num_inference_steps=20,
        height=size,
        width=size,
        generator=torch.Generator().manual_seed(seed),
    )
    if family in T5_FAMILIES:
        kwargs['max_sequence_length'] = bases.MAX_SEQUENCE_LENGTH
    if family == 'flux_kontext':  # recolour a grey scene of the caption's shape
        rng = np.random.default_rng([seed, 11])
        kwargs.update(
            image=[
                world.render(
                    world.uncoloured(world.sample_scene(rng, shape=p.split()[-1]))
                )
                for p in prompts
            ],
            max_area=size * size,
            _auto_resize=False,
        )
    kwargs.update(call)
    images = pipe(prompt=prompts, **kwargs).images
    colour = shape = 0
    for prompt, image in zip(prompts, images, strict=True):
        found = world.classify(image)
        _, hue, kind = prompt.split()
        colour += found.hue == hue
        shape += found.shape == kind
    return dict(colour=colour / len(prompts), shape=shape / len(prompts), images=images)
