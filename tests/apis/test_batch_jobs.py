"""Batch jobs: N good lines → N images and a contact sheet; a bad line is
reported with its number and the rest still run."""

import json
import os.path as osp

import pytest
from PIL import Image

from diffengine_ipa.apis import run_jobs
from diffengine_ipa.apis.batch_jobs import contact_sheet, read_jobs

from ..conftest import REPO
from ..tools.helpers import run_tool, run_tool_here
from .test_inferencer import inferencer

IMAGES = osp.join(REPO, 'data/mini_dataset/images')


def write_jobs(folder) -> str:
    lines = [
        json.dumps(
            dict(prompt='a cat', image=f'{IMAGES}/cat.jpg', seed=1, steps=2, name='cat')
        ),
        'this is not json',
        json.dumps(
            dict(
                prompt='two',
                image=[f'{IMAGES}/cat.jpg', f'{IMAGES}/rocket.jpg'],
                steps=2,
                num_images=2,
            )
        ),
        json.dumps(dict(prompt='gone', image='missing.jpg', steps=2)),
        '',
        json.dumps(dict(prompt='typo', image=f'{IMAGES}/cat.jpg', sead=3)),
        json.dumps(dict(prompt='rocket', image='rocket.jpg', scale=0.5, steps=2)),
    ]
    (folder / 'rocket.jpg').write_bytes(open(f'{IMAGES}/rocket.jpg', 'rb').read())
    path = folder / 'jobs.jsonl'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_jobs_run_every_good_line(tiny_families, converted, tmp_path):
    path = write_jobs(tmp_path)
    summary = run_jobs(
        inferencer(tiny_families, 'sd15', converted['safetensors']),
        path,
        str(tmp_path / 'out'),
    )
    assert summary['jobs'] == 6
    assert [osp.basename(p) for p in summary['images']] == [
        '0001_cat.png',
        '0003_two_0.png',
        '0003_two_1.png',
        '0007_rocket.png',
    ]
    assert all(Image.open(p).size == (64, 64) for p in summary['images'])
    sheet = Image.open(summary['contact_sheet'])
    assert sheet.size == (4 * 192, 192 + 18)
    errors = summary['errors']
    assert errors[0] == f'{path}:2: not JSON (Expecting value)'
    assert errors[1].startswith(f"{path}:6: unknown key 'sead'")
    assert errors[2].startswith(f'{path}:4: ') and 'missing.jpg' in errors[2]
    assert len(errors) == 3


def test_reading_jobs_resolves_paths(tmp_path):
    path = tmp_path / 'jobs.jsonl'
    path.write_text(
        json.dumps(dict(prompt='x', image=['a.jpg', '/abs/b.jpg'], mask='m.png')) + '\n'
    )
    ((number, job),), errors = read_jobs(str(path))
    assert number == 1 and not errors
    assert job['image'] == [str(tmp_path / 'a.jpg'), '/abs/b.jpg']
    assert job['mask'] == str(tmp_path / 'm.png')


def test_contact_sheet_layout():
    tiles = [(f'{i}', Image.new('RGB', (8, 8))) for i in range(5)]
    assert contact_sheet(tiles, cell=10, columns=4, header=2).size == (40, 24)


@pytest.mark.slow
def test_infer_tool_jobs_and_saved_embeddings(tiny_family, converted, tmp_path):
    from ..conftest import TINY_CONFIG, tiny_overrides

    options = [
        '--cfg-options',
        *[f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()],
    ]
    result = run_tool(
        'infer.py',
        TINY_CONFIG,
        converted['safetensors'],
        '--jobs',
        write_jobs(tmp_path),
        '--out-dir',
        tmp_path / 'out',
        *options,
        check=False,
    )
    assert result.returncode == 2
    assert 'wrote 4 images and' in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 3 and 'Traceback' not in result.stderr
    assert (tmp_path / 'out/contact_sheet.png').is_file()
    common = ['--steps', '2', '--seed', '4', *options]
    run_tool_here(
        'infer.py',
        TINY_CONFIG,
        converted['safetensors'],
        '--image',
        f'{IMAGES}/cat.jpg',
        '--save-embeds',
        tmp_path / 'cat.safetensors',
        '--out',
        tmp_path / 'direct.png',
        *common,
    )
    run_tool_here(
        'infer.py',
        TINY_CONFIG,
        converted['safetensors'],
        '--embeds',
        tmp_path / 'cat.safetensors',
        '--out',
        tmp_path / 'reused.png',
        *common,
    )
    direct, reused = (
        Image.open(tmp_path / f'{n}.png').tobytes() for n in ('direct', 'reused')
    )
    assert direct == reused


@pytest.mark.parametrize(
    'values, error',
    [
        (dict(image=None), '"image" must be a path or a list of paths, got null'),
        (dict(image=3), '"image" must be a path or a list of paths, got 3'),
        (dict(image=[]), '"image" must be a path or a list of paths, got []'),
        (dict(mask=['']), '"mask" must be a path or a list of paths'),
        (dict(steps=0), '"steps" must be an integer of at least 1, got 0'),
        (dict(steps=-2), '"steps" must be an integer of at least 1, got -2'),
        (dict(steps='4'), '"steps" must be an integer of at least 1, got "4"'),
        (dict(num_images=True), '"num_images" must be an integer of at least 1'),
        (dict(width=2.5), '"width" must be an integer of at least 1, got 2.5'),
        (dict(seed=-1), '"seed" must be an integer of at least 0, got -1'),
        (dict(guidance_scale=None), '"guidance_scale" must be a finite number'),
        (dict(prompt=7), '"prompt" must be text, got 7'),
        (dict(scale=-1), '"scale" must be a number of at least 0 or a scale spec'),
        (dict(scale=None), '"scale" must be a number of at least 0 or a scale spec'),
    ],
)
def test_null_zero_negative_and_wrong_typed_values_are_per_line(
    tmp_path, values, error
):
    path = tmp_path / 'jobs.jsonl'
    good = dict(prompt='a cat', image='cat.jpg')
    path.write_text(
        json.dumps(good)
        + '\n'
        + json.dumps(dict(good, **values))
        + '\n'
        + json.dumps(good)
        + '\n'
    )
    jobs, errors = read_jobs(str(path))
    assert [number for number, _ in jobs] == [1, 3]  # the others still run
    assert errors == [f'{path}:2: {error}'] or (
        len(errors) == 1 and errors[0].startswith(f'{path}:2: {error}')
    ), errors
