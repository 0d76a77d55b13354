"""Malformed adapter files are one line wherever they are read, and a failed
conversion never replaces a good file."""

import os

import pytest
import torch

from diffengine_ipa.errors import CheckpointError, StorageError
from diffengine_ipa.official_format import (
    load_adapter,
    nest_official,
    save_official,
)

from ..tools.helpers import one_line_error, run_tool_in_process
from .bad_adapters import (
    BAD_KEY_MAPS,
    BAD_STATES,
    good_state,
    kit_checkpoint,
    write_kit_checkpoint,
)


def write_bad_file(folder, case, kind: str) -> str:
    """The corpus case as an official nested ``.bin`` or as a training
    checkpoint of this kit."""
    name, layout, mutate, _ = case
    state = good_state(layout)
    mutate(state)
    if kind == 'bin':
        path = folder / 'adapter.bin'
        torch.save(nest_official(state), path)
    else:
        path = folder / 'iter_5.pth'
        write_kit_checkpoint(path, *kit_checkpoint(state))
    return str(path)


@pytest.mark.parametrize('kind', ['bin', 'kit'])
@pytest.mark.parametrize('case', BAD_STATES, ids=[c[0] for c in BAD_STATES])
def test_malformed_adapter_is_one_line(tmp_path, case, kind):
    path = write_bad_file(tmp_path, case, kind)
    with pytest.raises(CheckpointError) as err:
        load_adapter(path)  # what convert, infer, test and training call
    assert case[3] in str(err.value) and '\n' not in str(err.value)
    assert str(err.value).startswith(path)


@pytest.mark.parametrize('case', BAD_KEY_MAPS, ids=[c[0] for c in BAD_KEY_MAPS])
def test_bogus_key_map_is_one_line(tmp_path, case):
    name, mutate, message = case
    state_dict, key_map = mutate(*kit_checkpoint(good_state('plus')))
    write_kit_checkpoint(tmp_path / 'iter_5.pth', state_dict, key_map)
    with pytest.raises(CheckpointError, match=message) as err:
        load_adapter(str(tmp_path / 'iter_5.pth'))
    assert '\n' not in str(err.value)


def test_every_bad_file_is_one_line_from_convert(tmp_path):
    """The corpus through the command line: exit 2, one ``error:`` line, no
    traceback; ``--out``, a good file, is left as it was."""
    good = tmp_path / 'good.safetensors'
    save_official(good_state('base'), str(good))
    before = good.read_bytes()
    for index, case in enumerate(BAD_STATES):
        folder = tmp_path / str(index)
        folder.mkdir()
        path = write_bad_file(folder, case, 'kit')
        for args in (['--info', path], [path, '--out', good]):
            error = one_line_error(run_tool_in_process('convert.py', *args))
            assert case[3] in error, (case[0], error)
        assert good.read_bytes() == before, case[0]


def test_convert_checks_before_it_replaces(tmp_path, monkeypatch):
    good_file = tmp_path / 'ip_adapter.safetensors'
    checkpoint = tmp_path / 'iter_5.pth'
    write_kit_checkpoint(checkpoint, *kit_checkpoint(good_state('base')))
    run = run_tool_in_process('convert.py', checkpoint, '--out', good_file)
    assert run.returncode == 0, run.stderr
    before = good_file.read_bytes()

    # Written, read back, found different: nothing replaced.
    import diffengine_ipa.official_format.files as files

    real = files.load_weights_file

    def corrupted(path, *args):
        contents, meta = real(path, *args)
        return {k: v + 1 for k, v in contents.items()}, meta

    monkeypatch.setattr(files, 'load_weights_file', corrupted)
    with pytest.raises(CheckpointError, match='read back differs'):
        save_official(good_state('base'), str(good_file))
    monkeypatch.undo()
    assert good_file.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if '.tmp-' in p.name] == []

    # A full disk: one line, the file that was there intact.
    if os.path.exists('/dev/full'):
        os.symlink('/dev/full', tmp_path / f'.ip_adapter.tmp-{os.getpid()}.safetensors')
        with pytest.raises(StorageError, match='No space left on device'):
            save_official(good_state('base'), str(good_file))
        assert good_file.read_bytes() == before

    # --dtype without --out never replaces its own input.
    error = one_line_error(
        run_tool_in_process('convert.py', good_file, '--dtype', 'fp16')
    )
    assert 'is the input file; converting it would replace it' in error
    assert good_file.read_bytes() == before

    # fp16 cannot hold a weight of 1e6: one line, not an Inf file.
    state = good_state('base')
    state['image_proj.proj.weight'][0, 0] = 1e6
    write_kit_checkpoint(checkpoint, *kit_checkpoint(state))
    error = one_line_error(
        run_tool_in_process(
            'convert.py', checkpoint, '--dtype', 'fp16', '--out', good_file
        )
    )
    assert 'does not fit in float16 (largest value 1e+06)' in error
    assert good_file.read_bytes() == before
