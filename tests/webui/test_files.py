"""The Files tab: tools/convert.py on a checkpoint of the workspace, its
--info, and the lists the other tabs offer."""

import os.path as osp

from diffengine_ipa.webui import files
from diffengine_ipa.webui.train_options import TrainSettings, write_run_info

from .conftest import CONFIG, put


def test_convert_a_checkpoint_and_describe_the_file(tiny_workspace, converted):
    ws = tiny_workspace
    checkpoint = put(ws, converted['checkpoint'], 'runs/files_run/iter_10.pth')
    with open(osp.join(ws.run_dir('files_run'), 'last_checkpoint'), 'w') as f:
        f.write(checkpoint)  # as the runner writes it
    assert 'runs/files_run/iter_10.pth' in files.checkpoints(ws)
    output, written = files.convert(ws, 'runs/files_run/iter_10.pth')
    assert written == osp.join(
        ws.run_dir('files_run'), 'ip_adapter_iter_10.safetensors'
    )
    assert output.startswith(f'wrote {written}')
    assert 'ip-adapter layout' in output and '12,480 parameters' in output
    assert 'runs/files_run/ip_adapter_iter_10.safetensors' in files.adapter_files(ws)
    info = files.info(ws, 'runs/files_run/ip_adapter_iter_10.safetensors')
    assert 'layout:          ip-adapter' in info and 'parameters:' in info
    output, written = files.convert(ws, 'runs/files_run', 'bin', 'fp16')
    assert written == osp.join(ws.run_dir('files_run'), 'ip_adapter.bin'), output
    assert 'float16' in files.info(ws, written).split('dtype:')[1]
    output, written = files.convert(ws, 'runs/files_run/ip_adapter.bin')
    assert written == osp.join(
        ws.run_dir('files_run'), 'ip_adapter.safetensors'
    )  # bin → safetensors
    with open(osp.join(ws.run_dir('files_run'), 'notes.pth'), 'w') as f:
        f.write('not a checkpoint')
    output, written = files.convert(ws, 'runs/files_run/notes.pth')
    assert written is None and output.startswith('error: ')  # one line
    assert len(output.splitlines()) == 1


def test_adapters_and_the_run_that_made_them(tmp_path):
    from diffengine_ipa.webui.workspace import Workspace

    ws = Workspace(str(tmp_path / 'ws'))
    for path in (
        'runs/r/iter_5.pth',
        'runs/r/ip_adapter.safetensors',
        'adapters/published.bin',
        'models/tiny/model.safetensors',
        '.gradio/x/ip_adapter.safetensors',
    ):
        put(ws, __file__, path)
    assert sorted(files.adapters(ws)) == [
        'adapters/published.bin',
        'runs/r/ip_adapter.safetensors',
        'runs/r/iter_5.pth',
    ]
    assert files.run_models(ws, 'runs/r/iter_5.pth') is None  # not the page's
    settings = TrainSettings(CONFIG, base_model='models/tiny', face_embedder='Tiny')
    write_run_info(ws, 'r', settings, ['python'])
    assert files.run_models(ws, 'runs/r/iter_5.pth') == dict(
        config=CONFIG, base_model='models/tiny', image_encoder='', face_embedder='Tiny'
    )
    assert files.run_of(ws, 'adapters/published.bin') is None
