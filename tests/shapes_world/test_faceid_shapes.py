"""FaceID in the shapes world: the shapes face embedder finds the one shape
and its embedding tells colours apart; prepare_faces embeds every pair's
reference and every held-out case; shapes_sd15_faceid's data, its
training step, and its judge's images (the model's predict from the face
embeddings) equal tools/infer.py --face-embeds."""

import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.registry import init_default_scope
from PIL import Image, ImageDraw

from diffengine_ipa.faces import build_face_embedder
from diffengine_ipa.registry import DATASETS, MODELS
from diffengine_ipa.shapes_world.world import HUES, draw

from ..conftest import REPO, tiny_overrides

CONFIG = osp.join(REPO, 'configs/ip_adapter/shapes_sd15_faceid.py')


@pytest.fixture(scope='module')
def embedder(shapes_bases):
    return build_face_embedder(
        dict(
            type='ShapesFaceEmbedder',
            encoder=osp.join(shapes_bases, 'sd15/image_encoder'),
        )
    )


@pytest.fixture(scope='module')
def faces(small_world, shapes_bases, tmp_path_factory) -> dict:
    """The small world's pairs and held-out cases with their faces, by
    docs/faceid.md's commands (the bases' encoder named), in a copy of the
    world: the session's stays as written."""
    import shutil

    from ..tools.helpers import run_tool_here

    world = str(tmp_path_factory.mktemp('faces_world'))
    for part in ('pairs', 'heldout'):
        shutil.copytree(osp.join(small_world, part), osp.join(world, part))
    encoder = osp.join(shapes_bases, 'sd15/image_encoder')
    written = {}
    for name, ann in (('pairs', 'pairs/data'), ('cases', 'heldout/cases')):
        run_tool_here(
            'prepare_faces.py', osp.join(world, ann + '.json'),
            '--embedder', 'ShapesFaceEmbedder', '--embedder-options',
            f'encoder={encoder}',
        )  # fmt: skip
        written[name] = osp.join(world, ann + '_faces.jsonl')
    return written


def test_embedder_finds_the_one_shape_and_tells_colours_apart(embedder):
    rng = np.random.default_rng(0)
    assert embedder.embedding_dim == 64
    assert embedder.faces(Image.new('RGB', (32, 32), (128, 126, 130))) == []
    two = Image.new('RGB', (32, 32), (40, 40, 40))
    ImageDraw.Draw(two).rectangle((2, 2, 10, 10), fill=(230, 20, 20))
    ImageDraw.Draw(two).ellipse((18, 18, 29, 29), fill=(20, 20, 230))
    assert len(embedder.faces(two)) == 2
    found = {hue: [embedder.faces(draw(rng, hue)) for _ in range(2)] for hue in HUES}
    assert all(len(f) == 1 for pair in found.values() for f in pair)
    first = {hue: pair[0][0].embedding for hue, pair in found.items()}
    second = {hue: pair[1][0].embedding for hue, pair in found.items()}
    assert all(abs(np.linalg.norm(e) - 1) < 1e-5 for e in first.values())
    for hue in HUES:  # the same colour elsewhere is nearer than any other colour
        same = first[hue] @ second[hue]
        assert all(same > first[hue] @ second[other] for other in HUES if other != hue)


def test_prepare_faces_embeds_every_reference_and_case(faces, embedder):
    records = [json.loads(line) for line in open(faces['pairs'])]
    assert len(records) == 300 and len(open(faces['cases']).readlines()) == 54
    folder = osp.dirname(faces['pairs'])
    for record in records:
        assert np.load(osp.join(folder, record['face_embedding'])).shape == (64,)
    first = records[0]  # the face is the reference's, not the target's
    reference = Image.open(osp.join(folder, first['reference_file']))
    np.testing.assert_allclose(
        np.load(osp.join(folder, first['face_embedding'])),
        embedder.faces(reference)[0].embedding,
        atol=1e-6,
    )


def test_config_is_the_world_calibration_with_faces():
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.pretrained_model_name_or_path == 'work_dirs/shapes_world/sd15'
    projection = cfg.model.image_projection
    assert projection.type == 'IPAdapterFaceIDImageProjection'
    assert (projection.id_embed_dim, projection.lora_rank) == (64, 8)
    data = cfg.train_dataloader
    assert data.dataset.ann_file == 'work_dirs/shapes_world/pairs/data_faces.jsonl'
    assert data.dataset.resolution == 32 and data.batch_size == 64
    assert cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.train_cfg.max_epochs * 3200 // 64 == 600
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        (load,) = [t for t in loader.dataset.pipeline if t.type == 'LoadFaceEmbedding']
        assert load.dim == 64
    test = cfg.test_dataloader.dataset
    assert test.ann_file == 'work_dirs/shapes_world/heldout/cases_faces.jsonl'
    assert test.scales == (0.0, 0.5, 1.0) and test.empty_prompt
    assert cfg.val_dataloader.dataset.quick and cfg.val_dataloader.dataset.scales == (
        1.0,
    )
    assert cfg.test_evaluator.type == 'ReferenceMatchMetric'


@pytest.fixture(scope='module')
def tiny_faceid(tiny_families):
    """shapes_sd15_faceid on the tiny SD1.5 family, its adapter and LoRA
    moved by seeded noise (as a trained one)."""
    cfg = Config.fromfile(CONFIG)
    overrides = {
        k: v
        for k, v in tiny_overrides(tiny_families['sd15']).items()
        if k.startswith('model.')
    }
    cfg.merge_from_dict({**overrides, 'model.generation_cfg.steps': 3})
    init_default_scope('diffengine_ipa')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in sorted(model.adapter_parameter_names()):
            param = model.get_parameter(name)
            param.add_(0.2 * torch.randn(param.shape, generator=generator))
    return cfg, overrides, model


def test_trains_a_step_and_the_judge_generates_as_infer_face_embeds(
    tiny_faceid, faces, tmp_path
):
    from diffengine_ipa.official_format import official_state_dict, save_official

    from ..tools.helpers import run_tool_here

    cfg, overrides, model = tiny_faceid
    train = dict(cfg.train_dataloader.dataset, ann_file=faces['pairs'])
    batch = default_collate([DATASETS.build(train)[i] for i in range(2)])
    assert batch['inputs']['face_embeds'].shape == (2, 64)
    assert torch.isfinite(model(**model.data_preprocessor(batch, True))['loss'])

    test = DATASETS.build(dict(cfg.test_dataloader.dataset, ann_file=faces['cases']))
    assert len(test) == 54 * 3
    samples = pseudo_collate([test[i] for i in (2, 5)])  # two cases at scale 1
    assert samples['inputs']['scale'] == [1.0, 1.0]
    ours = [out['image'] for out in model.predict(**samples)]

    adapter = str(tmp_path / 'ip_adapter.bin')
    save_official(official_state_dict(model), adapter)
    options = ['--cfg-options', *[f'{k}={v}' for k, v in overrides.items()]]
    for i, (face, image) in enumerate(
        zip(samples['inputs']['face_embeds'], ours, strict=True)
    ):
        np.save(tmp_path / f'{i}.npy', face.numpy())
        run_tool_here(
            'infer.py', CONFIG, adapter, '--face-embeds', str(tmp_path / f'{i}.npy'),
            '--prompt', '', '--steps', '3', '--height', '32', '--width', '32',
            '--out', str(tmp_path / f'{i}.png'), *options,
        )  # fmt: skip
        theirs = np.asarray(Image.open(tmp_path / f'{i}.png'), np.int16)
        assert np.abs(np.asarray(image, np.int16) - theirs).max() <= 1
    # the face embedding acts: two cases, two images
    assert (
        np.abs(np.asarray(ours[0], np.int16) - np.asarray(ours[1], np.int16)).mean() > 1
    )


def test_sample_images_during_training_are_generated_from_the_faces(tiny_faceid, faces):
    """The visualisation hook renders FaceID's validation cases from their
    face embeddings, as the judge does."""
    from types import SimpleNamespace

    from diffengine_ipa.engine.hooks.visualization_hook import (
        IPAdapterVisualizationHook,
    )

    cfg, _, model = tiny_faceid
    val = dict(cfg.val_dataloader.dataset, ann_file=faces['cases'])
    panels = []
    runner = SimpleNamespace(
        val_loop=object(),
        rank=0,
        val_dataloader=SimpleNamespace(dataset=DATASETS.build(val)),
        model=model,
        visualizer=SimpleNamespace(add_image=lambda *a, **k: panels.append(a)),
    )
    IPAdapterVisualizationHook(num_cases=2).render(runner, step=1)
    assert len(panels) == 2 and panels[0][1].shape == (32, 64, 3)
