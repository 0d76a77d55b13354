"""FaceID in the page: the variants offered in Train (their faces found at
Start) and Generate (a face photo or saved embeddings, s-scale, LoRA scale),
generating tools/infer.py's pixels."""

import os.path as osp

import numpy as np
import pytest
from PIL import Image

from diffengine_ipa.errors import DatasetError
from diffengine_ipa.webui import data
from diffengine_ipa.webui.family_choices import (
    config_choices,
    config_faceid,
    face_embedders,
)
from diffengine_ipa.webui.generation import InferencerCache, face_fields, generate
from diffengine_ipa.webui.train_options import TrainSettings, train_command

from ..conftest import REPO
from ..models.faceid_files import face_photo, faceid_model
from ..tools.helpers import run_tool_here
from .test_training import as_train_py_reads_it

gr = pytest.importorskip(
    'gradio', reason='the webui extra is not installed (bash tools/install_webui.sh)'
)
PLUSV2 = 'tiny_sd15_faceid_plusv2.py'


def test_the_faceid_variants_are_offered_by_their_configs(tmp_path):
    """Every FaceID config is a choice labelled with its variant, read from
    its projection; the Generate fields follow the variant; the face
    embedders are the registry's."""
    from diffengine_ipa.registry import FACE_EMBEDDERS
    from diffengine_ipa.webui.page import Page
    from diffengine_ipa.webui.workspace import Workspace

    labels = dict((name, label) for label, name in config_choices())
    faceid = {name: config_faceid(name) for name in labels if config_faceid(name)}
    assert sorted(faceid) == sorted(
        [
            f'{tiny}{family}_faceid{kind}.py'
            for tiny in ('', 'tiny_')
            for family in ('sd15', 'sdxl')
            for kind in ('', '_plus', '_plusv2')
        ]
        + ['shapes_sd15_faceid.py']  # the shapes world's (docs/faceid.md)
    )
    assert labels['shapes_sd15_faceid.py'] == 'SD1.5 · FaceID · shapes_sd15_faceid.py'
    assert labels[PLUSV2] == f'SD1.5 · FaceID-PlusV2 · {PLUSV2}'
    assert labels['sdxl_faceid.py'] == 'SDXL · FaceID · sdxl_faceid.py'
    assert labels['sd15_mini_dataset_plus.py'] == 'SD1.5 · sd15_mini_dataset_plus.py'
    assert [
        face_fields(f'tiny_sd15_faceid{k}.py') for k in ('', '_plus', '_plusv2')
    ] == [
        dict(face=True, crop=False, s_scale=False),
        dict(face=True, crop=True, s_scale=False),
        dict(face=True, crop=True, s_scale=True),
    ]
    assert not any(face_fields('tiny_sd15_mini_dataset.py').values())
    page = Page(Workspace(str(tmp_path / 'ws')))
    assert page.face_view(PLUSV2) == (gr.update(visible=True),) * 3
    assert page.face_view('tiny_sd15_faceid.py')[1:] == (gr.update(visible=False),) * 2
    FACE_EMBEDDERS.import_from_location()
    assert face_embedders()[0] == 'InsightFaceEmbedder'
    assert sorted(face_embedders()) == sorted(FACE_EMBEDDERS.module_dict)


def test_a_faceid_run_trains_on_the_datasets_faces(tiny_workspace):
    """Start finds the faces of the dataset's images with the chosen
    embedder (a photo without one is left out and named) and the run reads
    those records; before that the command is refused in one line."""
    from mmengine.registry import init_default_scope

    from diffengine_ipa.registry import DATASETS
    from diffengine_ipa.webui.page import Page

    ws = tiny_workspace
    uploads = []
    for name, photo in (
        ('ann.png', face_photo()),
        ('bob.png', face_photo((60, 64))),
        ('sky.png', Image.new('RGB', (128, 128), (90, 120, 160))),
    ):
        photo.save(osp.join(ws.folder('.gradio', 'faces'), name))
        uploads.append(osp.join(ws.root, '.gradio', 'faces', name))
    data.add_images(ws, 'datasets/faces', uploads, 'a portrait')
    settings = TrainSettings(PLUSV2, 'datasets/faces', face_embedder='TinyFaceEmbedder')
    with pytest.raises(DatasetError, match='datasets/faces: no face records yet'):
        train_command(ws, 'faces', settings)
    summary = Page(ws).prepare_faces(settings).splitlines()
    assert summary[0].startswith(
        'faces: datasets/faces: 3 records, 2 kept, 1 left out (no face found: 1); '
    )
    assert summary[1:] == ['  record 3 (images/sky.png): no face found']
    _, cfg = as_train_py_reads_it(train_command(ws, 'faces', settings))
    assert cfg.train_dataloader.dataset.ann_file == osp.join(
        ws.root, 'datasets', 'faces_faces.jsonl'
    )
    init_default_scope('diffengine_ipa')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 2
    assert dataset[0]['inputs']['face_embeds'].shape == (512,)
    assert Page(ws).prepare_faces(TrainSettings('tiny_sd15_mini_dataset.py')) == ''


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert('RGB'), np.int16)


def test_the_pages_faceid_image_is_infer_pys(tiny_workspace, tiny_families, tmp_path):
    """A face photo (its face found by the chosen embedder) gives
    ``tools/infer.py --face``'s pixels, with s-scale and LoRA scale; its saved
    embedding and crop give the same; a photo with no face or two is the
    CLI's one line on the page."""
    from diffengine_ipa.faces import build_face_embedder
    from diffengine_ipa.official_format import official_state_dict, save_official
    from diffengine_ipa.webui.page import Page, shown

    ws = tiny_workspace
    adapter = osp.join(ws.folder('adapters'), 'ip-adapter-faceid-plusv2_sd15.bin')
    save_official(official_state_dict(faceid_model(tiny_families)), adapter)
    refs = ws.folder('refs')
    photo = face_photo()
    photo.save(osp.join(refs, 'face.png'))
    face = build_face_embedder(dict(type='TinyFaceEmbedder')).faces(photo)[0]
    np.save(osp.join(refs, 'face.npy'), face.embedding)
    face.crop.save(osp.join(refs, 'crop.png'))
    face_photo((64, 60), (20, 20)).save(osp.join(refs, 'two.png'))
    Image.new('RGB', (128, 128), 'gray').save(osp.join(refs, 'none.png'))

    cache = InferencerCache()
    call = dict(steps=2, seed=5, s_scale=0.7, lora_scale=0.6)
    (ours,) = generate(
        ws, cache, PLUSV2, 'adapters/ip-adapter-faceid-plusv2_sd15.bin', [],
        'a portrait', face='refs/face.png', face_embedder='TinyFaceEmbedder', **call,
    )  # fmt: skip
    (saved,) = generate(
        ws, cache, PLUSV2, adapter, [], 'a portrait', face_embeds='refs/face.npy',
        face_image='refs/crop.png', **call,
    )  # fmt: skip
    assert cache.loads == 1 and np.abs(pixels(ours) - pixels(saved)).max() <= 1

    tiny = osp.join(ws.root, 'models', 'tiny_models', 'tiny_sd15')
    run_tool_here(
        'infer.py', osp.join(REPO, 'configs', 'ip_adapter', PLUSV2), adapter,
        '--face', osp.join(refs, 'face.png'), '--face-embedder', 'TinyFaceEmbedder',
        '--prompt', 'a portrait', '--steps', '2', '--seed', '5', '--s-scale', '0.7',
        '--lora-scale', '0.6', '--out', tmp_path / 'infer.png', '--cfg-options',
        f'model.pretrained_model_name_or_path={tiny}',
        f'model.image_encoder.pretrained_model_name_or_path={tiny}/image_encoder',
    )  # fmt: skip
    assert np.array_equal(pixels(ours), pixels(tmp_path / 'infer.png'))

    page = Page(ws, cache=cache)
    # config, adapter, uploads, ref_paths, prompt, negative, scale, preset,
    # steps, guidance, seed, images, base model, image encoder, true CFG,
    # face, face_embeds, face_crop, face embedder, s_scale, LoRA scale
    knobs = [PLUSV2, adapter, None, '', 'a portrait', '', 1.0, 'scale', 2, None, 0]
    knobs += [1, '', '', 0]
    for name, message in (
        ('two.png', 'two.png: several faces: 2 found, one is wanted'),
        ('none.png', 'none.png: no face found'),
    ):
        with pytest.raises(gr.Error, match=message):
            path = osp.join(refs, name)
            shown(page.generate)(*knobs, path, None, None, 'TinyFaceEmbedder', 1.0, 1.0)
