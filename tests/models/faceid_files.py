"""Trained-looking tiny FaceID adapters and a drawn face, for the tests of
generating from faces (tools/infer.py, the inferencer, the web UI)."""

import os.path as osp

import torch
from mmengine.registry import init_default_scope
from PIL import Image

from ..conftest import REPO, tiny_overrides


def faceid_config(variant: str = 'faceid_plusv2') -> str:
    """``configs/ip_adapter/tiny_sd15_<variant>.py``."""
    return osp.join(REPO, f'configs/ip_adapter/tiny_sd15_{variant}.py')


def faceid_model(tiny_families: dict, variant: str = 'faceid_plusv2'):
    """The tiny SD1.5 config's model, its adapter and LoRA moved by seeded
    noise (a trained LoRA's up weights are no longer 0)."""
    from diffengine_ipa.registry import MODELS
    from diffengine_ipa.user_config import load_user_config

    overrides = tiny_overrides(tiny_families['sd15'])
    init_default_scope('diffengine_ipa')
    model = MODELS.build(load_user_config(faceid_config(variant), overrides).model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in sorted(model.adapter_parameter_names()):
            param = model.get_parameter(name)
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return model


def save_checkpoint(model, path: str) -> str:
    """The model as a training checkpoint (what AdapterCheckpointHook keeps)."""
    from diffengine_ipa.official_format import adapter_metadata

    state = {k: v for k, v in model.state_dict().items()}
    torch.save(
        dict(state_dict=state, meta=dict(ip_adapter=adapter_metadata(model))), path
    )
    return path


def face_photo(*centres: tuple[int, int]) -> Image.Image:
    """A 128 px photo with a drawn face (TinyFaceEmbedder finds it) at each
    centre; one face by default."""
    from diffengine_ipa.faces import draw_face

    photo = Image.new('RGB', (128, 128), (90, 120, 160))
    for i, centre in enumerate(centres or [(64, 60)]):
        photo = draw_face(photo, centre, 30 if i == 0 else 14)
    return photo
