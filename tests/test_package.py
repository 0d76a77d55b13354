"""The package imports cheaply and registers every class in our registries."""

import subprocess
import sys


def test_import_is_light():
    code = (
        'import sys, diffengine_ipa, diffengine_ipa.registry; '
        'heavy = [m for m in ("torch", "diffusers", "transformers") '
        'if m in sys.modules]; print(heavy)'
    )
    out = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == '[]'


def test_classes_register_in_our_scope():
    from diffengine_ipa.models.families import FAMILIES
    from diffengine_ipa.registry import (
        ARCHITECTURES,
        DATASETS,
        FACE_EMBEDDERS,
        FUNCTIONS,
        HOOKS,
        LOOPS,
        MODELS,
        TRANSFORMS,
    )

    expected = {
        MODELS: [
            'IPAdapter',
            'IPAdapterDataPreprocessor',
            'IPAdapterImageProjection',
            'IPAdapterPlusImageProjection',
            'IPAdapterTimeImageProjection',
            *(entry.base.__name__ for entry in FAMILIES.values()),
            'CLIPImageEncoder',
            'SiglipImageEncoder',
            'Dinov2ImageEncoder',
        ],
        DATASETS: ['IPAdapterDataset'],
        TRANSFORMS: [
            'LoadImage',
            'PreprocessReference',
            'ResizeShortEdge',
            'CenterCrop',
            'RandomCrop',
            'RandomHorizontalFlip',
            'ToVAEInput',
            'ComputeTimeIds',
            'PackInputs',
        ],
        HOOKS: ['AdapterCheckpointHook'],
        LOOPS: ['ResumableEpochBasedTrainLoop'],
        FUNCTIONS: ['block_wrap_policy'],
        FACE_EMBEDDERS: ['InsightFaceEmbedder', 'TinyFaceEmbedder'],
        ARCHITECTURES: [
            *(entry.architecture for entry in FAMILIES.values()),
            *(entry.tiny_architecture for entry in FAMILIES.values()),
            'clip-vit-large-patch14',
            'clip-vit-huge-patch14',
            'clip-vit-bigg-patch14',
            'siglip-so400m-patch14-384',
            'tiny_clip_vision',
            'tiny_siglip_384',
        ],
    }
    for registry, names in expected.items():
        for name in names:
            registry.get(name)  # imports the registry's locations
            assert name in registry.module_dict, name
            assert registry.scope == 'diffengine_ipa'
