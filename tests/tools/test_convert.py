"""tools/convert.py: our checkpoint → the official file diffusers loads."""

import pickle

import torch
from safetensors import safe_open

from ..conftest import REPO, TINY_CONFIG, tiny_overrides
from .helpers import one_line_error, run_tool, run_tool_here

CAT = f'{REPO}/data/mini_dataset/images/cat.jpg'


def official_keys() -> set:
    keys = {f'image_proj.{p}.{w}' for p in ('proj', 'norm') for w in ('weight', 'bias')}
    return keys | {
        f'ip_adapter.{i}.{kind}.weight'
        for i in (1, 3, 5, 7)
        for kind in ('to_k_ip', 'to_v_ip')
    }


def test_safetensors_layout(converted):
    with safe_open(converted['safetensors'], framework='pt') as f:
        keys, metadata = set(f.keys()), f.metadata()
        shapes = {key: tuple(f.get_slice(key).get_shape()) for key in keys}
    assert keys == official_keys()
    assert shapes['image_proj.proj.weight'] == (4 * 32, 16)
    assert shapes['image_proj.norm.weight'] == (32,)
    assert metadata['num_tokens'] == '4' and metadata['variant'] == 'base'
    assert metadata['kit'].startswith('diffengine_ipa')


def test_bin_layout_and_values(converted):
    nested = torch.load(converted['bin'], weights_only=True)
    assert set(nested) == {'image_proj', 'ip_adapter'}
    flat = {f'{part}.{k}': v for part in nested for k, v in nested[part].items()}
    assert set(flat) == official_keys()
    checkpoint = torch.load(converted['checkpoint'], weights_only=True)
    key_map = checkpoint['meta']['ip_adapter']['key_map']
    for ours, official in key_map.items():
        assert torch.equal(flat[official], checkpoint['state_dict'][ours])


def test_not_a_checkpoint(tmp_path, trained_work_dir):
    text = tmp_path / 'notes.pth'
    text.write_text('hello')
    assert 'not a torch checkpoint' in one_line_error(
        run_tool_here('convert.py', text, check=False)
    )
    plain = tmp_path / 'weights.pth'
    torch.save({'layer.weight': torch.zeros(2)}, plain)
    assert 'not an IP-Adapter checkpoint' in one_line_error(
        run_tool_here('convert.py', plain, check=False)
    )


class WritesAFile:
    """Unpickling this would create a file: convert must refuse it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_malicious_pickle_is_refused(tmp_path, tiny_family):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': WritesAFile(str(marker))}, evil)
    error = one_line_error(run_tool('convert.py', evil, check=False))
    assert 'refused to load' in error and 'io.open' in error
    raw = tmp_path / 'raw.bin'  # a bare pickle, not torch's format
    with open(raw, 'wb') as f:
        pickle.dump({'state_dict': WritesAFile(str(marker))}, f)
    one_line_error(run_tool_here('convert.py', raw, check=False))
    assert not marker.exists()

    # infer reads user files the same way: refused before anything runs.
    options = [f'{k}={v}' for k, v in tiny_overrides(tiny_family).items()]
    for path in (evil, raw):
        error = one_line_error(
            run_tool_here(
                'infer.py',
                TINY_CONFIG,
                path,
                '--image',
                CAT,
                '--out',
                tmp_path / 'out.png',
                '--cfg-options',
                *options,
                check=False,
            )
        )
        assert 'refused to load' in error or 'not a torch checkpoint' in error
    assert not marker.exists() and not (tmp_path / 'out.png').exists()


def test_info_and_summary_name_the_family_and_the_base(convert_tiny, tiny_families):
    """A kit-written file of a base whose widths name no family (the tiny
    SD3.5) says its family and the base it was trained on, from the
    training metadata, in ``--info`` and in the conversion summary."""
    from .helpers import run_tool_in_process

    files = convert_tiny('sd3')
    base = tiny_families['sd3']['base']
    info = run_tool_in_process('convert.py', '--info', files['safetensors']).stdout
    assert 'family:          SD3.5 (' in info, info
    assert f'base model:      {base}\n' in info, info
    out = f'{files["safetensors"]}.again.safetensors'
    summary = run_tool_in_process(
        'convert.py', files['checkpoint'], '--out', out
    ).stdout
    assert f'adapter for SD3.5 (trained on {base})' in summary, summary


def test_info_names_a_flux_type_file_by_its_metadata_or_honestly(tmp_path):
    """XLabs' layout at T5's 4096-d tokens is FLUX.1's, Kontext's and
    Chroma's alike: a file without the kit's metadata says so, one with it
    names its family (here Chroma, formerly misnamed FLUX.1)."""
    from safetensors.torch import save_file

    from .helpers import run_tool_in_process

    state = {
        'ip_adapter_proj_model.proj.weight': torch.zeros(4 * 4096, 8),
        'ip_adapter_proj_model.proj.bias': torch.zeros(4 * 4096),
        'ip_adapter_proj_model.norm.weight': torch.ones(4096),
        'ip_adapter_proj_model.norm.bias': torch.zeros(4096),
    }
    for kind in ('k', 'v'):
        name = f'double_blocks.0.processor.ip_adapter_double_stream_{kind}_proj'
        state[f'{name}.weight'] = torch.zeros(8, 4096)
        state[f'{name}.bias'] = torch.zeros(8)
    lines = {}
    for family in (None, 'Chroma', 'FluxKontext'):
        path = tmp_path / f'{family}.safetensors'
        save_file(state, str(path), metadata=family and dict(family=family))
        out = run_tool_in_process('convert.py', '--info', path).stdout
        lines[family] = next(line for line in out.splitlines() if 'family:' in line)
    assert 'FLUX.1-type: FLUX.1, Kontext or Chroma (4096-d' in lines[None]
    assert 'family:          Chroma (4096-d' in lines['Chroma']
    assert 'family:          FLUX.1 Kontext (4096-d' in lines['FluxKontext']
