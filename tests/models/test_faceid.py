"""FaceID, FaceID-Plus and PlusV2 (SD1.5, SDXL): the sizes of the published
files, and a trained tiny adapter that diffusers' own pipeline loads with
nothing missing, generating the kit's pixels."""

import json
import logging
import os.path as osp

import numpy as np
import pytest
import torch
from accelerate import init_empty_weights
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from PIL import Image

from diffengine_ipa.models.families.unet_attention import install_unet_adapter
from diffengine_ipa.models.generation import live_pipeline
from diffengine_ipa.models.image_projections import (
    IPAdapterFaceIDImageProjection,
    IPAdapterFaceIDPlusImageProjection,
)
from diffengine_ipa.models.random_models import build_component
from diffengine_ipa.official_format import (
    describe_official,
    load_adapter,
    nest_official,
    official_state_dict,
    save_official,
)
from diffengine_ipa.official_format.conversion import rename_to_official
from diffengine_ipa.official_format.layouts import (
    attention_key_map,
    projection_key_map,
)
from diffengine_ipa.registry import DATASETS, MODELS

from ..conftest import REPO

FACES = osp.join(REPO, 'data/mini_faces')
# h94/IP-Adapter-FaceID's files: projection + K/V of the cross-attention
# layers + the rank-128 LoRA of every attention layer (fp16: 96.7 MB,
# 156.5 MB, 1.07 GB, 1.49 GB). Plus and PlusV2 differ only in generation.
COUNTS = {
    # SD1.5: MLP 3,675,648 / Plus 33,581,568; K/V 19,169,280 (16 layers);
    # LoRA 25,509,888 (32 layers).
    ('sd15', 'faceid'): 48_354_816,
    ('sd15', 'faceid-plus'): 78_260_736,
    # SDXL: MLP 8,926,208 / Plus 217,125,888; K/V 340,787,200 (70 layers);
    # LoRA 185,794,560 (140 layers).
    ('sdxl', 'faceid'): 535_507_968,
    ('sdxl', 'faceid-plus'): 743_707_648,
}


@pytest.mark.parametrize('family, layers', [('sd15', 16), ('sdxl', 70)])
def test_full_size_counts_equal_the_published_files(family, layers):
    """Our modules on the meta device, and what diffusers' loader builds
    from the file they make (its processors, projection and peft LoRA)."""
    with init_empty_weights():
        unet, plain = build_component(family, 'unet'), build_component(family, 'unet')
        install_unet_adapter(unet, 4, lora_rank=128)
        width = unet.config.cross_attention_dim
        projections = [
            IPAdapterFaceIDImageProjection(width),
            IPAdapterFaceIDPlusImageProjection(1280, width),  # ViT-H/14
        ]
    attention = {
        k: torch.empty(v.shape, device='meta')
        for k, v in unet.named_parameters()
        if '.processor.' in k
    }
    for projection in projections:
        state = dict(attention)
        state.update(
            {
                'p.' + k: torch.empty(v.shape, device='meta')
                for k, v in projection.named_parameters()
            }
        )
        keys = dict(attention_key_map(unet), **projection_key_map(projection, 'p.'))
        official = rename_to_official(state, keys)
        nested = nest_official(official)
        theirs = [
            *plain._convert_ip_adapter_attn_to_diffusers(
                [nested], low_cpu_mem_usage=True
            ).values(),
            plain._convert_ip_adapter_image_proj_to_diffusers(
                nested['image_proj'], low_cpu_mem_usage=True
            ),
        ]
        lora = plain._load_ip_adapter_loras([nested])[0]
        their_count = sum(
            p.numel()
            for m in theirs
            if isinstance(m, torch.nn.Module)
            for p in m.parameters()
        ) + sum(v.numel() for v in lora.values())
        info = describe_official(official)
        count = COUNTS[family, projection.variant]
        assert sum(v.numel() for v in state.values()) == their_count == count
        assert (info['variant'], info['layers'], info['tokens']) == (
            projection.variant,
            layers,
            4,
        )
        assert (info['lora_layers'], info['lora_rank']) == (2 * layers, 128)
        assert info['image_embed_dim'] == (
            512 if projection.variant == 'faceid' else 1280
        )


def _diffusers_warnings() -> tuple[list[str], logging.Handler]:
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger('diffusers').addHandler(handler)
    return records, handler


VARIANTS = [
    f'{family}_faceid{kind}'
    for family in ('sd15', 'sdxl')
    for kind in ('', '_plus', '_plusv2')
]


@pytest.mark.parametrize('variant', VARIANTS)
def test_faceid_trains_converts_and_generates_as_diffusers(
    tiny_families, variant, tmp_path
):
    """One training step moves the adapter and LoRA only; the converted file
    loads back into the model bit for bit and into diffusers' pipeline
    (``load_ip_adapter(..., image_encoder_folder=None)``, the LoRA by peft)
    with nothing missing, and both generate the same pixels."""
    pytest.importorskip('peft')  # diffusers loads FaceID's LoRA with peft
    import diffusers

    from diffengine_ipa.user_config import load_user_config

    family = variant.split('_')[0]
    folders = tiny_families[family]
    cfg = load_user_config(
        osp.join(REPO, f'configs/ip_adapter/tiny_{variant}.py'),
        {
            'model.pretrained_model_name_or_path': folders['base'],
            'model.image_encoder.pretrained_model_name_or_path': folders[
                'image_encoder'
            ],
            'train_dataloader.dataset.ann_file': osp.join(FACES, 'data.json'),
        },
    )
    init_default_scope('diffengine_ipa')
    model = MODELS.build(cfg.model)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = model.data_preprocessor(default_collate([dataset[0], dataset[1]]), True)
    assert batch['inputs']['face_embeds'].shape == (2, 512)
    model(**batch)['loss'].backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == model.adapter_parameter_names()
    lora_up = [n for n in trained if n.endswith('_lora.up.weight')]
    assert len(lora_up) == 4 * len(model.family.unet.attn_processors)
    assert all(model.get_parameter(n).grad.abs().sum() > 0 for n in lora_up)

    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: LoRA up no longer 0
        for name in sorted(trained):
            param = model.get_parameter(name)
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    name = f'ip-adapter-{variant.replace("_", "-")}.' + (
        'bin' if 'plus' in variant else 'safetensors'
    )
    path = str(tmp_path / name)
    state = official_state_dict(model)
    save_official(state, path)
    assert set(load_adapter(path)) == set(state)
    model.load_pretrained_ip_adapter(path)  # import: the same weights back
    loaded = official_state_dict(model)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())

    face = torch.from_numpy(np.load(osp.join(FACES, 'faces/astronaut.npy')))[None]
    crop = Image.open(osp.join(FACES, 'faces/astronaut.jpg'))
    plus, v2 = '_plus' in variant, variant.endswith('v2')
    call = dict(steps=2, guidance_scale=5.0, seed=1, height=64, width=64)
    with live_pipeline(model.eval()) as ours:
        kit = ours(
            None,
            'a photo',
            scale=0.8,
            image_embeds=[face],
            face_image=crop if plus else None,
            s_scale=0.7 if v2 else None,
            lora_scale=0.6,
            **call,
        )[0]
        without_lora = ours(
            None, 'a photo', image_embeds=[face], face_image=crop, lora_scale=0, **call
        )[0]

    pipeline = getattr(
        diffusers,
        'StableDiffusionXLPipeline' if family == 'sdxl' else 'StableDiffusionPipeline',
    ).from_pretrained(folders['base'])
    pipeline.set_progress_bar_config(disable=True)
    warnings, handler = _diffusers_warnings()
    try:
        pipeline.load_ip_adapter(
            str(tmp_path), subfolder='', weight_name=name, image_encoder_folder=None
        )
    finally:
        logging.getLogger('diffusers').removeHandler(handler)
    assert not [
        w
        for w in warnings
        if any(
            s in w for s in ('PEFT backend', 'issing key', 'nexpected key', 'ignored')
        )
    ], warnings
    pipeline.set_ip_adapter_scale(0.8)
    pipeline.set_adapters(['faceid_0'], adapter_weights=[0.6])
    if plus:  # diffusers' FaceID-Plus example: the crop's CLIP tokens
        encoder, side = model.image_encoder, model.image_encoder.image_size
        clip = encoder(encoder.preprocess([crop]), 'hidden_states')
        null = encoder(torch.zeros(1, 3, side, side), 'hidden_states')
        projection = pipeline.unet.encoder_hid_proj.image_projection_layers[0]
        projection.clip_embeds = torch.cat([null, clip])[:, None]
        projection.shortcut, projection.shortcut_scale = v2, 0.7
    theirs = pipeline(
        'a photo',
        ip_adapter_image_embeds=[torch.cat([torch.zeros_like(face), face])[:, None]],
        num_inference_steps=2,
        guidance_scale=5.0,
        height=64,
        width=64,
        generator=torch.Generator('cpu').manual_seed(1),
    ).images[0]
    kit, theirs = np.asarray(kit, np.int16), np.asarray(theirs, np.int16)
    assert kit.shape == theirs.shape == (64, 64, 3)
    assert np.abs(kit - theirs).max() <= 1  # ≤ 1/255
    assert np.abs(kit - np.asarray(without_lora, np.int16)).max() > 1


def test_face_records_read_their_files_or_say_which_is_wrong(tmp_path):
    """The face embedding and crop come with each record (paths relative to
    the records, as image paths); a missing, mis-shaped or lone field is one
    line naming the file."""
    from diffengine_ipa.datasets import IPAdapterDataset
    from diffengine_ipa.datasets.transforms import LoadFaceEmbedding, LoadImage
    from diffengine_ipa.errors import DatasetError

    image = Image.new('RGB', (64, 64), 'red')
    image.save(tmp_path / 'a.png')
    Image.new('RGB', (32, 32), 'blue').save(tmp_path / 'a_face.png')
    np.save(tmp_path / 'a.npy', np.arange(512, dtype=np.float32))
    np.save(tmp_path / 'short.npy', np.zeros(128, np.float32))
    records = [
        dict(
            image_file='a.png',
            text='x',
            face_embedding='a.npy',
            face_image='a_face.png',
        ),
        dict(image_file='a.png', text='y', face_embedding='short.npy'),
        dict(image_file='a.png', text='z'),
    ]
    (tmp_path / 'data.json').write_text(json.dumps(records))
    init_default_scope('diffengine_ipa')
    pipeline = [dict(type='LoadImage'), dict(type='LoadFaceEmbedding')]
    dataset = IPAdapterDataset(str(tmp_path / 'data.json'), pipeline=pipeline)
    first = dataset[0]
    assert torch.equal(first['face_embeds'], torch.arange(512.0))
    assert first['reference_img'].size == (32, 32)  # the crop, not the image
    with pytest.raises(DatasetError, match=r'short\.npy: a face embedding must be 512'):
        dataset[1]
    with pytest.raises(DatasetError, match='has no "face_embedding"'):
        dataset[2]
    with pytest.raises(DatasetError, match='has no "face_image"'):
        LoadFaceEmbedding(crop=True)(
            LoadImage()(
                dict(
                    img_path=str(tmp_path / 'a.png'),
                    face_embedding_path=str(tmp_path / 'a.npy'),
                )
            )
        )
    (tmp_path / 'lone.json').write_text(
        json.dumps([dict(image_file='a.png', text='x', face_image='a_face.png')])
    )
    with pytest.raises(DatasetError, match='1 of 1 records are unusable'):
        IPAdapterDataset(str(tmp_path / 'lone.json'), pipeline=pipeline)[0]


def test_infer_from_a_face_photo_or_its_saved_embedding(tiny_families, tmp_path):
    """``tools/infer.py --face photo`` (detected, aligned and embedded by the
    face embedder) gives the pixels of ``--face-embeds emb.npy --face-image
    crop`` for the same face (PlusV2, ``--s-scale``, ``--lora-scale``); a
    photo with two faces, or an embedding of another width, is one line."""
    from diffengine_ipa.faces import build_face_embedder

    from ..conftest import tiny_overrides
    from ..tools.helpers import one_line_error, run_tool_here
    from .faceid_files import face_photo, faceid_config, faceid_model

    config = faceid_config('faceid_plusv2')
    overrides = tiny_overrides(tiny_families['sd15'])
    model = faceid_model(tiny_families, 'faceid_plusv2')
    adapter = str(tmp_path / 'ip-adapter-faceid-plusv2_sd15.bin')
    save_official(official_state_dict(model), adapter)

    photo = face_photo()
    photo.save(tmp_path / 'face.png')
    face = build_face_embedder(dict(type='TinyFaceEmbedder')).faces(photo)[0]
    np.save(tmp_path / 'face.npy', face.embedding)
    face.crop.save(tmp_path / 'crop.png')
    options = ['--cfg-options', *[f'{k}={v}' for k, v in overrides.items()]]
    common = ['--steps', '2', '--s-scale', '0.7', '--lora-scale', '0.6', *options]
    run_tool_here(
        'infer.py', config, adapter, '--face', str(tmp_path / 'face.png'),
        '--face-embedder', 'TinyFaceEmbedder', '--out', str(tmp_path / 'a.png'),
        *common,
    )  # fmt: skip
    run_tool_here(
        'infer.py', config, adapter, '--face-embeds', str(tmp_path / 'face.npy'),
        '--face-image', str(tmp_path / 'crop.png'), '--out', str(tmp_path / 'b.png'),
        *common,
    )  # fmt: skip
    a = np.asarray(Image.open(tmp_path / 'a.png'), np.int16)
    b = np.asarray(Image.open(tmp_path / 'b.png'), np.int16)
    assert a.shape == (64, 64, 3) and np.abs(a - b).max() <= 1

    face_photo((64, 60), (20, 20)).save(tmp_path / 'two.png')
    two = run_tool_here(
        'infer.py', config, adapter, '--face', str(tmp_path / 'two.png'),
        '--face-embedder', 'TinyFaceEmbedder', *common, check=False,
    )  # fmt: skip
    assert 'two.png: several faces: 2 found, one is wanted' in one_line_error(two)
    np.save(tmp_path / 'wide.npy', np.zeros(768, np.float32))
    wide = run_tool_here(
        'infer.py', config, adapter, '--face-embeds', str(tmp_path / 'wide.npy'),
        *common, check=False,
    )  # fmt: skip
    assert 'wide.npy: a face embedding is (512,)' in one_line_error(wide)


def test_info_tells_plus_from_plusv2_and_a_plusv2_file_keeps_its_shortcut(
    tiny_families, tmp_path
):
    """Checkpoints and converted FaceID files record their variant:
    ``--info`` names FaceID, FaceID-Plus and FaceID-PlusV2, and says a file
    without the record (a ``.bin``, as published) may be either Plus. A file recorded as
    PlusV2 generates with the shortcut whatever the config says (the pixels
    of the PlusV2 config with the unrecorded ``.bin``), and ``s_scale`` on a
    Plus adapter is one line."""
    from diffengine_ipa.apis import IPAdapterInferencer
    from diffengine_ipa.errors import UserError

    from ..conftest import tiny_overrides
    from ..tools.helpers import run_tool_here
    from .faceid_files import faceid_config, faceid_model, save_checkpoint

    info = {}
    for variant in ('faceid', 'faceid_plus', 'faceid_plusv2'):
        checkpoint = save_checkpoint(
            faceid_model(tiny_families, variant), str(tmp_path / f'{variant}.pth')
        )
        for ext in ('safetensors', 'bin', 'pth'):
            out = str(tmp_path / f'{variant}.{ext}')
            if ext != 'pth':
                run_tool_here('convert.py', checkpoint, '--out', out)
            lines = run_tool_here('convert.py', '--info', out).stdout.splitlines()
            info[variant, ext] = [
                line.split(':', 1)[1].strip()
                for line in lines
                if line.startswith(('  variant:', '  image features:'))
            ]
    plus = '32-d hidden states of the face crop, and the 512-d face embedding'
    either = (
        'FaceID-Plus or FaceID-PlusV2 (same keys; PlusV2 uses the shortcut, --s-scale)'
    )
    face_id = ['faceid (FaceID)', '512-d face embedding']
    assert info['faceid', 'safetensors'] == info['faceid', 'bin'] == face_id
    assert info['faceid_plus', 'safetensors'] == ['faceid-plus (FaceID-Plus)', plus]
    assert info['faceid_plusv2', 'safetensors'] == ['faceid-plus (FaceID-PlusV2)', plus]
    for variant in ('faceid', 'faceid_plus', 'faceid_plusv2'):  # as its checkpoint
        assert info[variant, 'pth'] == info[variant, 'safetensors']
    for variant in ('faceid_plus', 'faceid_plusv2'):  # no record: either
        assert info[variant, 'bin'] == [f'faceid-plus ({either})', plus]

    overrides = tiny_overrides(tiny_families['sd15'])
    face = torch.ones(1, 512) / 512**0.5
    crop = Image.new('RGB', (64, 64), (200, 160, 140))

    def generate(config: str, adapter: str, **call) -> np.ndarray:
        inferencer = IPAdapterInferencer(
            faceid_config(config), str(tmp_path / adapter), device='cpu',
            cfg_options=overrides,
        )  # fmt: skip
        (image,) = inferencer(
            'a photo', image_embeds=[face], face_image=crop, steps=2, seed=3, **call
        )
        return np.asarray(image, np.int16)

    recorded = generate('faceid_plus', 'faceid_plusv2.safetensors')
    v2 = generate('faceid_plusv2', 'faceid_plusv2.bin')
    plus = generate('faceid_plus', 'faceid_plusv2.bin')
    assert np.array_equal(recorded, v2) and np.abs(v2 - plus).max() > 1
    with pytest.raises(
        UserError, match="FaceID-PlusV2's shortcut scale; this adapter is FaceID-Plus"
    ):
        generate('faceid_plus', 'faceid_plus.safetensors', s_scale=0.5)
