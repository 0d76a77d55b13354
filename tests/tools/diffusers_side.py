"""The diffusers side of the interop tests: pipelines built and called the way
a diffusers user does, and each family's denoiser called the way its
pipeline calls it. Written from diffusers' own API, not from the kit's."""

import os.path as osp

import diffusers
import numpy as np
import torch
from transformers import CLIPVisionModelWithProjection

from ..conftest import family_of

PIPELINES = dict(
    sd15='StableDiffusionPipeline',
    sdxl='StableDiffusionXLPipeline',
    sd3='StableDiffusion3Pipeline',
    flux='FluxPipeline',
    chroma='ChromaPipeline',
    qwen_image='QwenImagePipeline',
    flux_kontext='FluxKontextPipeline',
)
NEGATIVE = 'monochrome, lowres, bad anatomy, worst quality, low quality'
# What tools/infer.py generates with for each tiny config (its generation_cfg
# and the family's defaults), as diffusers pipeline arguments.
CALL_KWARGS = dict(
    sd15=dict(negative_prompt=NEGATIVE, guidance_scale=7.5),
    sdxl=dict(negative_prompt=NEGATIVE, guidance_scale=7.5),
    sd3=dict(guidance_scale=7.0, max_sequence_length=32, height=64, width=64),
    flux=dict(guidance_scale=3.5, max_sequence_length=32, height=64, width=64),
    chroma=dict(guidance_scale=5.0, max_sequence_length=32, height=64, width=64),
    qwen_image=dict(
        negative_prompt=' ',
        true_cfg_scale=4.0,
        max_sequence_length=32,
        height=64,
        width=64,
    ),
    # FluxKontextPipeline rescales to max_area (default 1 MP) and the input
    # image to its preferred sizes unless told not to.
    flux_kontext=dict(
        guidance_scale=3.5,
        max_sequence_length=32,
        height=64,
        width=64,
        max_area=64 * 64,
        _auto_resize=False,
    ),
)


def diffusers_pipeline(variant: str, folders: dict, adapter_file: str):
    """The family's pipeline from the base folder, the adapter (and its image
    encoder) loaded by the family's ``load_ip_adapter``."""
    family = family_of(variant)
    pipeline_class = getattr(diffusers, PIPELINES[family])
    kwargs = (
        dict(safety_checker=None, requires_safety_checker=False)
        if family == 'sd15'
        else {}
    )
    pipe = pipeline_class.from_pretrained(folders['base'], **kwargs)
    folder, name = osp.dirname(adapter_file), osp.basename(adapter_file)
    encoder = osp.abspath(folders['image_encoder'])
    if family == 'sd3':  # SigLIP and its processor from that folder
        pipe.load_ip_adapter(
            folder, weight_name=name, subfolder='', image_encoder_folder=encoder
        )
    elif family == 'qwen_image':  # no loader in diffusers: the kit's
        import diffengine_ipa

        diffengine_ipa.load_ip_adapter(
            pipe, adapter_file, image_encoder=encoder, image_encoder_dtype=torch.float32
        )
    elif family in ('flux', 'chroma', 'flux_kontext'):  # FluxIPAdapterMixin
        pipe.load_ip_adapter(
            folder,
            weight_name=name,
            image_encoder_pretrained_model_name_or_path=encoder,
            image_encoder_dtype=torch.float32,
        )
    else:
        pipe.register_modules(
            image_encoder=CLIPVisionModelWithProjection.from_pretrained(encoder)
        )
        pipe.load_ip_adapter(
            folder, subfolder='', weight_name=name, image_encoder_folder=encoder
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffusers_pixels(pipe, family: str, prompt: str, **kwargs) -> np.ndarray:
    """The pipeline's image of ``prompt`` at 4 steps, seed 3 (the steps and
    seed the tests give the kit), called with ``family``'s CALL_KWARGS and
    ``kwargs``: uint8 values, as int16 for differences."""
    image = pipe(
        prompt=prompt,  # FluxKontextPipeline's first argument is the image
        num_inference_steps=4,
        generator=torch.Generator('cpu').manual_seed(3),
        output_type='np',
        **dict(CALL_KWARGS[family], **kwargs),
    ).images[0]
    return (image * 255).round().astype(np.int16)


def projection_in(pipe, family: str):
    """The image projection diffusers built from the file."""
    denoiser = pipe.unet if family in ('sd15', 'sdxl') else pipe.transformer
    if family == 'sd3':
        return denoiser.image_proj
    return denoiser.encoder_hid_proj.image_projection_layers[0]


@torch.no_grad()
def denoiser_outputs(model, pipe, family: str, features: torch.Tensor, edit=None):
    """The denoiser's prediction with our adapter (``model``) and with
    diffusers' after loading the file (``pipe``), on the same random inputs
    (Kontext: ``edit``, input images in [0, 1], else random ones), at IP
    scale 1: ``(ours, theirs)``."""
    pipe.set_ip_adapter_scale(1.0)
    torch.manual_seed(0)
    texts = ['a cat', 'a rocket']
    if family in ('sd15', 'sdxl'):
        cross = pipe.unet.config.cross_attention_dim
        latents, timesteps = torch.randn(2, 4, 32, 32), torch.tensor([3, 800])
        text = torch.randn(2, 77, cross)
        added = (
            dict(
                text_embeds=torch.randn(2, 32),
                time_ids=torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2),
            )
            if family == 'sdxl'
            else {}
        )
        ours = model.family.denoise(
            latents,
            timesteps,
            dict(added, text_states=text),
            model.image_projection(features),
        )
        theirs = pipe.unet(
            latents,
            timesteps,
            encoder_hidden_states=text,
            added_cond_kwargs=dict(added, image_embeds=[features[:, None]]),
        ).sample
        return ours, theirs
    latents = torch.randn(2, 4, 32, 32)
    timesteps = torch.tensor([900.0, 250.0])  # σ · 1000, as the pipelines
    conditions = model.family.encode_prompt(texts)
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    pixels = pixels if edit is None else edit
    if family == 'flux_kontext':  # the images to edit
        inputs = dict(input_pixel_values=pixels * 2 - 1)
        conditions = model.family.conditions(conditions, inputs)
    ours = model.family.denoise(
        latents, timesteps, conditions, model.image_projection(features, timesteps)
    )
    if family == 'sd3':
        theirs = pipe.transformer(
            hidden_states=latents,
            timestep=timesteps,
            encoder_hidden_states=conditions['prompt_embeds'],
            pooled_projections=conditions['pooled_prompt_embeds'],
            joint_attention_kwargs=dict(ip_adapter_image_embeds=features),
        ).sample
        return ours, theirs
    packed = pipe._pack_latents(latents, 2, 4, 32, 32)
    if family == 'qwen_image':  # its own text encoding, unpadded
        states, mask = pipe.encode_prompt(texts, max_sequence_length=32)
        tokens = pipe.transformer.encoder_hid_proj([features[:, None]])
        prediction = pipe.transformer(
            hidden_states=packed,
            timestep=timesteps / 1000,
            encoder_hidden_states=states,
            encoder_hidden_states_mask=mask,
            img_shapes=[[(1, 16, 16)]] * 2,
            attention_kwargs=dict(ip_hidden_states=tokens),
        ).sample
        return ours, pipe._unpack_latents(prediction, 64, 64, 2)[:, :, 0]
    image_ids = pipe._prepare_latent_image_ids(2, 16, 16, 'cpu', torch.float32)
    if family == 'chroma':
        # ChromaPipeline: its own T5 encoding and text mask, extended over the
        # image tokens; no pooled text, no guidance.
        states, text_ids, mask, *_ = pipe.encode_prompt(
            texts, do_classifier_free_guidance=False, max_sequence_length=32
        )
        mask = pipe._prepare_attention_mask(2, packed.shape[1], states.dtype, mask)
        prediction = pipe.transformer(
            hidden_states=packed,
            timestep=timesteps / 1000,
            encoder_hidden_states=states,
            txt_ids=text_ids,
            img_ids=image_ids,
            attention_mask=mask,
            joint_attention_kwargs=dict(ip_adapter_image_embeds=[features[:, None]]),
        ).sample
        return ours, pipe._unpack_latents(prediction, 64, 64, pipe.vae_scale_factor)
    tokens = packed
    if family == 'flux_kontext':
        # FluxKontextPipeline.prepare_latents: the input image's latents,
        # packed after the noisy ones, their ids' first channel 1.
        _, context, _, context_ids = pipe.prepare_latents(
            pixels * 2 - 1, 2, 4, 64, 64, torch.float32, 'cpu', None, packed
        )
        tokens = torch.cat([packed, context], dim=1)
        image_ids = torch.cat([image_ids, context_ids], dim=0)
    # FluxPipeline: 2×2-packed latents, position ids, t / 1000, guidance 3.5.
    prediction = pipe.transformer(
        hidden_states=tokens,
        timestep=timesteps / 1000,
        guidance=torch.full([2], 3.5),
        pooled_projections=conditions['pooled_prompt_embeds'],
        encoder_hidden_states=conditions['prompt_embeds'],
        txt_ids=torch.zeros(conditions['prompt_embeds'].shape[1], 3),
        img_ids=image_ids,
        joint_attention_kwargs=dict(ip_adapter_image_embeds=[features[:, None]]),
    ).sample[:, : packed.shape[1]]
    theirs = pipe._unpack_latents(prediction, 64, 64, pipe.vae_scale_factor)
    return ours, theirs
