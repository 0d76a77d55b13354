"""Every parser of user text, fed what hypothesis makes up: records files,
job lines, ``--adapter``, ``--scale`` and ``--mask`` specs, ``--cfg-options``
values. Each ends in a result or in the kit's own one-line error
(:class:`UserError`, or argparse's exit 2), never in another exception."""

import json
import os.path as osp
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffengine_ipa.apis import AdapterSpec
from diffengine_ipa.apis.batch_jobs import _label, read_jobs
from diffengine_ipa.apis.file_generation import per_adapter
from diffengine_ipa.apis.inference import parse_scale
from diffengine_ipa.apis.inferencer import _read
from diffengine_ipa.cli import ConfigOptions, ToolParser
from diffengine_ipa.datasets.record_index import RecordIndex
from diffengine_ipa.datasets.record_sources import JsonRecords
from diffengine_ipa.errors import UserError
from diffengine_ipa.user_config import load_user_config

from .conftest import TINY_CONFIG

FUZZ = settings(
    max_examples=40,
    database=None,  # no .hypothesis folder in the checkout
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KEYS = ['image_file', 'text', 'reference_file', 'prompt', 'image', 'mask', 'scale']
KEYS += ['steps', 'seed', 'num_images', 'width', 'name', 'negative_image']
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(['a.jpg', '../x.png', '/etc/passwd', 'img/\x00.jpg', '\ud800'])
)
VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4
        )
    ),
    max_leaves=10,
)


@st.composite
def user_text(draw, lines: bool) -> bytes:
    """JSON of records (a list or lines), or that cut, spliced or random."""
    values = draw(st.lists(VALUES, max_size=4))
    if lines:
        text = '\n'.join(
            json.dumps(v, ensure_ascii=draw(st.booleans())) for v in values
        )
    else:
        text = json.dumps(
            values,
            ensure_ascii=draw(st.booleans()),
            indent=draw(st.sampled_from([None, 1])),
        )
    how = draw(st.sampled_from(['whole', 'cut', 'spliced', 'random', 'bytes']))
    if how == 'cut' and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif how == 'spliced':
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=6)) + text[at:]
    elif how == 'random':
        text = draw(st.text(max_size=80))
    elif how == 'bytes':
        return draw(st.binary(max_size=80))
    encoding = draw(st.sampled_from(['utf-8', 'utf-8-sig', 'utf-16', 'utf-32']))
    return text.encode(encoding, 'surrogatepass')


@settings(FUZZ, max_examples=100)
@given(data=user_text(lines=False) | user_text(lines=True))
def test_records_files(data):
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'data.json')
        with open(path, 'wb') as f:
            f.write(data)
        try:
            index = RecordIndex.open(
                JsonRecords(path),
                cache_root=osp.join(folder, 'cache'),
                workers=1,
                progress=False,
            )
        except UserError as err:
            assert '\n' not in str(err).split(':\n')[0]
            return
        for problem in index.bad_records():
            assert isinstance(problem.reason, str)
        for i in range(len(index)):
            index.info(i)


@settings(FUZZ, max_examples=100)
@given(data=user_text(lines=True))
def test_job_lines(data):
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'jobs.jsonl')
        with open(path, 'wb') as f:
            f.write(data)
        try:
            jobs, errors = read_jobs(path)
        except UserError as err:
            assert '\n' not in str(err)
            return
        assert all('\n' not in line for line in errors)
        for number, job in jobs:
            _label(job, number)


TEXT = st.text(max_size=30) | st.sampled_from(
    ['a.safetensors:0.5@enc//sub', 'x:1e999', 'x:nan@', '@', ':', '//', 'a@b@c']
)


@FUZZ
@given(text=TEXT)
def test_adapter_specs(text):
    from diffengine_ipa.models.image_encoders import image_encoder_config

    try:
        spec = AdapterSpec.parse(text)
    except UserError as err:  # e.g. a scale that is not finite
        assert '\n' not in str(err)
        return
    assert isinstance(spec.path, str)
    if spec.image_encoder:
        try:
            image_encoder_config(spec.image_encoder)
        except UserError:
            pass


SCALES = (
    TEXT
    | VALUES.map(json.dumps)
    | st.sampled_from(
        [
            'style',
            '0.5,0.8',
            '{"up": {"block_0": [0.0, 1.0]}}',
            '{"up": 1}',
            '[1, 2]',
            '{"down": {"block_9": [1]}}',
            '{"up": {"block_0": "x"}}',
            '-1',
            'inf',
        ]
    )
)


@pytest.fixture(scope='module')
def sd15(tiny_families, converted):
    from .apis.test_inferencer import inferencer

    return inferencer(tiny_families, 'sd15', converted['safetensors'])


@FUZZ
@given(text=SCALES)
def test_scale_specs(sd15, text):
    """Parsed as tools/infer.py parses ``--scale`` (``parse_scale``), then set on a real
    SD1.5 pipeline (as a generation does before its first step)."""
    try:
        sd15.pipeline.set_scale(parse_scale(text, '--scale'))
    except UserError as err:
        assert '\n' not in str(err)


@FUZZ
@given(values=st.lists(TEXT, min_size=1, max_size=3))
def test_mask_specs(values):
    masks = per_adapter(values)
    try:
        _read(masks)
    except UserError as err:
        assert '\n' not in str(err)


OPTION = st.text(max_size=20) | st.builds(
    '{}={}'.format,
    st.sampled_from(
        ['train_cfg.max_iters', 'model.text_drop_rate', 'trian_cfg', 'a..b', '']
    ),
    st.text(max_size=16)
    | st.sampled_from(['[1,2', '(1,', 'None', "'x'", '[[]]', '{}']),
)


@settings(FUZZ, max_examples=25)
@given(options=st.lists(OPTION, min_size=1, max_size=3))
def test_cfg_options(options):
    parser = ToolParser(description='fuzz')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions)
    try:
        args = parser.parse_args(['--cfg-options', *options])
    except SystemExit as exit:  # argparse's one-line error
        assert exit.code == 2
        return
    try:
        load_user_config(TINY_CONFIG, args.cfg_options)
    except UserError as err:
        assert str(err).strip()
