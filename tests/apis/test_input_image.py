"""The input image (FLUX.1 Kontext's image to edit): only a Kontext config
takes one, said in one line before any model loads."""

from ..conftest import REPO, TINY_CONFIGS
from ..tools.helpers import one_line_error, run_tool_in_process

CAT = f'{REPO}/data/mini_dataset/images/cat.jpg'


def test_an_input_image_for_a_family_that_edits_none_is_one_line(tmp_path):
    result = run_tool_in_process(
        'infer.py',
        TINY_CONFIGS['flux'],
        str(tmp_path / 'never_read.safetensors'),
        '--image',
        CAT,
        '--input-image',
        CAT,
    )
    assert one_line_error(result) == (
        'error: --input-image: FluxPipeline edits no input image; a FLUX.1 '
        'Kontext config does'
    )
