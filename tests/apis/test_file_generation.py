"""generate_files: the request tools/infer.py makes, in this process; its
files are the inferencer's images for the same inputs, written and reported
one by one."""

import numpy as np
from PIL import Image

from diffengine_ipa.apis import GenerationRequest, generate_files
from diffengine_ipa.apis.file_generation import output_paths, per_adapter

from ..conftest import TINY_CONFIG, tiny_overrides
from .test_inferencer import CAT, ROCKET, inferencer


def test_files_are_the_inferencers_images(tiny_families, converted, tmp_path):
    request = GenerationRequest(
        TINY_CONFIG,
        converted['safetensors'],
        image=[f'{CAT},{ROCKET}'],
        steps=2,
        seed=4,
        num_images=2,
        out=str(tmp_path / 'pair.png'),
        device='cpu',
        cfg_options=tiny_overrides(tiny_families['sd15']),
    )
    lines = []
    written = generate_files(request, report=lines.append)
    paths = [str(tmp_path / 'pair_0.png'), str(tmp_path / 'pair_1.png')]
    assert written.images == paths and written.embeds is None
    assert written.jobs is None
    assert lines == [f'wrote {path}' for path in paths]
    expected = inferencer(tiny_families, 'sd15', converted['safetensors'])(
        request.prompt, [[CAT, ROCKET]], steps=2, seed=4, num_images=2
    )
    for path, image in zip(paths, expected, strict=True):
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(image))


def test_per_adapter_lists_and_default_output_names():
    assert per_adapter(None) is None
    assert per_adapter(['a.png,,b.png', ['c.png']]) == [['a.png', 'b.png'], ['c.png']]
    request = GenerationRequest('c.py', 'k', seed=7)
    assert output_paths(request, [['refs/cat.jpg']]) == ['outputs/infer/cat_seed7.png']
    request = GenerationRequest('c.py', 'k', face='me.jpg', num_images=2)
    assert output_paths(request, None) == [
        'outputs/infer/me_seed0_0.png',
        'outputs/infer/me_seed0_1.png',
    ]
