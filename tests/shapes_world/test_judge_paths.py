"""The judge's numbers hold outside the kit: the evaluator's images (the
model's live pipeline) equal the family's plain diffusers pipeline with the
converted file loaded by ``load_ip_adapter``, and tools/infer.py's; an
adapter whose image features are zeroed matches at chance."""

import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image
from safetensors.torch import save_file

from diffengine_ipa.evaluation import ReferenceMatchMetric
from diffengine_ipa.official_format import official_state_dict
from diffengine_ipa.registry import MODELS
from diffengine_ipa.shapes_world import chance_levels

from ..conftest import REPO, tiny_overrides

CONFIG = osp.join(REPO, 'configs/ip_adapter/shapes_sd15.py')
STEPS = 3


@pytest.fixture(scope='module')
def adapter(tiny_families, tmp_path_factory):
    """The shapes_sd15 model on the tiny SD1.5 family (its adapter's
    random init scaled up, so that the reference shows), and its file."""
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(
        {
            k: v
            for k, v in tiny_overrides(tiny_families['sd15']).items()
            if k.startswith('model.')
        }
    )
    cfg.model.generation_cfg.steps = STEPS
    init_default_scope('diffengine_ipa')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        for param in model.image_projection.parameters():
            param.mul_(4.0)
    path = str(tmp_path_factory.mktemp('adapter') / 'ip_adapter.safetensors')
    save_file(official_state_dict(model), path)
    return cfg, model, path


def _references(world_dir: str, count: int) -> list[Image.Image]:
    cases = json.load(open(osp.join(world_dir, 'heldout/cases.json')))
    return [
        Image.open(osp.join(world_dir, 'heldout', c['image_file'])).convert('RGB')
        for c in cases[:: len(cases) // count][:count]
    ]


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_evaluator_diffusers_and_infer_give_the_same_images(
    adapter, tiny_families, small_world
):
    import diffusers
    from transformers import CLIPVisionModelWithProjection

    from diffengine_ipa.apis import IPAdapterInferencer

    cfg, model, path = adapter
    family = tiny_families['sd15']
    references = _references(small_world, 2)
    # 1. the evaluator's path (tools/test.py): the model's predict
    ours = [
        out['image']
        for out in model.predict(
            dict(img=references, prompt=['', ''], scale=[1.0, 1.0], seed=[0, 0])
        )
    ]
    # 2. the plain diffusers pipeline, the file loaded by load_ip_adapter
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(
        family['base'], safety_checker=None, requires_safety_checker=False
    )
    pipe.register_modules(
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(
            family['image_encoder']
        )
    )
    pipe.load_ip_adapter(
        osp.dirname(path),
        subfolder='',
        weight_name=osp.basename(path),
        image_encoder_folder=family['image_encoder'],
    )
    pipe.set_progress_bar_config(disable=True)
    pipe.set_ip_adapter_scale(1.0)
    theirs = [
        pipe(
            prompt='',
            ip_adapter_image=ref,
            num_inference_steps=STEPS,
            height=32,
            width=32,  # the pipeline's default guidance, 7.5
            generator=torch.Generator().manual_seed(0),
        ).images[0]
        for ref in references
    ]
    # 3. tools/infer.py's inferencer, with the config's generation settings
    inferencer = IPAdapterInferencer(cfg, path, device='cpu')
    infer = [inferencer('', ref, scale=1.0, seed=0)[0] for ref in references]
    for a, b, c in zip(ours, theirs, infer, strict=True):
        assert a.size == b.size == c.size == (32, 32)
        assert np.abs(_pixels(a) - _pixels(b)).max() <= 1
        assert np.abs(_pixels(c) - _pixels(b)).max() <= 1
    # the adapter acts: the two references give two images
    assert np.abs(_pixels(ours[0]) - _pixels(ours[1])).mean() > 1


def test_zeroed_image_features_match_at_chance(adapter, small_world):
    """Without image features every output is the same image: its colour
    and shape match exactly one kind's share of the balanced held-out set."""
    from diffengine_ipa.apis import IPAdapterInferencer

    cfg, model, path = adapter
    inferencer = IPAdapterInferencer(cfg, path, device='cpu')
    cases = json.load(open(osp.join(small_world, 'heldout/cases.json')))
    metric = ReferenceMatchMetric()
    features = inferencer.encode(Image.new('RGB', (32, 32)))
    image = inferencer(
        '', image_embeds=[torch.zeros_like(features)], scale=1.0, seed=0, steps=STEPS
    )[0]
    samples = [
        dict(
            case_id=c['id'],
            img_path=c['image_file'],
            scale=1.0,
            seed=0,
            image=image,
            reference=Image.open(osp.join(small_world, 'heldout', c['image_file'])),
        )
        for c in cases
    ]
    metric.process({}, samples)
    scores = metric.compute_metrics(metric.results)
    chance = chance_levels()
    assert scores['colour_match@1'] == pytest.approx(chance['colour'])
    assert scores['shape_match@1'] == pytest.approx(chance['shape'])
