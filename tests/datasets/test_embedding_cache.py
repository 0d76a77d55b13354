"""The embedding cache: same tensors as the encoders give, and stale caches
refused."""

import json
import math
import shutil

import pytest
import torch
from mmengine.runner import Runner

from diffengine_ipa.apis import build_embedding_cache
from diffengine_ipa.datasets import IPAdapterDataset
from diffengine_ipa.errors import DatasetError, UserError
from diffengine_ipa.models import IPAdapter
from diffengine_ipa.models.random_models import write_base_model

from ..conftest import REPO, load_tiny_config

MINI = f'{REPO}/data/mini_dataset'


@pytest.fixture(scope='module')
def cached(tiny_family, tmp_path_factory):
    """A copy of the mini dataset, its tiny config and a cache built for it."""
    root = tmp_path_factory.mktemp('cached')
    shutil.copytree(MINI, root / 'data')
    cfg = load_tiny_config(
        tiny_family,
        root / 'work_dir',
        **{'train_dataloader.dataset.ann_file': str(root / 'data/data.json')},
    )
    summary = build_embedding_cache(cfg, str(root / 'cache'), batch_size=2)
    assert summary['written'] == 5
    shutil.copytree(root / 'cache', root / 'pristine')  # other tests rebuild it
    return dict(root=root, cfg=cfg, folder=str(root / 'cache'))


def cached_dataset(cached, **changes):
    cfg = cached['cfg'].train_dataloader.dataset
    kwargs = dict(
        ann_file=cfg.ann_file, pipeline=cfg.pipeline, embedding_cache=cached['folder']
    )
    kwargs.update(changes)
    return IPAdapterDataset(**kwargs)


def test_rebuild_is_incremental(cached):
    assert build_embedding_cache(cached['cfg'], cached['folder'])['written'] == 0


def test_cached_and_uncached_batches_give_the_same_loss(tiny_family, cached):
    from mmengine.dataset import default_collate

    model = IPAdapter(
        tiny_family['base'],
        tiny_family['image_encoder'],
        text_drop_rate=0.3,
        image_drop_rate=0.3,
        both_drop_rate=0.3,
    )
    cfg = cached['cfg'].train_dataloader.dataset
    plain = IPAdapterDataset(ann_file=cfg.ann_file, pipeline=cfg.pipeline)
    fast = cached_dataset(cached)
    indices = [0, 3, 4]
    for seed in range(4):
        losses = []
        for dataset in (plain, fast):
            batch = model.data_preprocessor(
                default_collate([dataset[i] for i in indices]), True
            )
            torch.manual_seed(seed)
            losses.append(model(**batch)['loss'].item())
        assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_cached_run_matches_uncached_run_step_for_step(tiny_family, cached):
    options = {
        'train_cfg.max_epochs': 2,
        'train_cfg.val_interval': 100,
        'default_hooks.logger.interval': 1,
        'model.both_drop_rate': 0.3,
        'default_hooks.checkpoint.interval': 100,
        'train_dataloader.dataset.ann_file': str(cached['root'] / 'data/data.json'),
    }
    curves = []
    for name, extra in (
        ('plain', {}),
        ('fast', {'train_dataloader.dataset.embedding_cache': cached['folder']}),
    ):
        work_dir = cached['root'] / name
        cfg = load_tiny_config(tiny_family, work_dir, **options, **extra)
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
        Runner.from_cfg(cfg).train()
        (scalars,) = work_dir.glob('*/vis_data/scalars.json')
        curves.append(
            [
                json.loads(line)['loss']
                for line in scalars.read_text().splitlines()
                if '"loss"' in line
            ]
        )
    assert len(curves[0]) == len(curves[1]) == 10
    assert all(math.isclose(a, b, abs_tol=1e-5) for a, b in zip(*curves, strict=True))


def test_changed_image_is_detected(cached, tmp_path):
    ann = tmp_path / 'data.json'
    shutil.copytree(cached['root'] / 'data/images', tmp_path / 'images')
    ann.write_text((cached['root'] / 'data/data.json').read_text())
    cached_dataset(cached, ann_file=str(ann))  # an identical copy is fine
    with open(tmp_path / 'images/coffee.jpg', 'ab') as f:
        f.write(b'\0')  # one byte more
    with pytest.raises(DatasetError, match=r'lacks 1 of 5 records .*coffee.jpg'):
        cached_dataset(cached, ann_file=str(ann))


def test_changed_transform_is_detected(cached):
    pipeline = [dict(t) for t in cached['cfg'].train_dataloader.dataset.pipeline]
    for transform in pipeline:
        if transform['type'] in ('ResizeShortEdge', 'CenterCrop'):
            transform['size'] = 48
    with pytest.raises(DatasetError, match='another data pipeline'):
        cached_dataset(cached, pipeline=pipeline)


def test_random_crop_cannot_be_cached(cached):
    pipeline = [
        dict(t, type='RandomCrop') if t['type'] == 'CenterCrop' else dict(t)
        for t in cached['cfg'].train_dataloader.dataset.pipeline
    ]
    with pytest.raises(DatasetError, match='RandomCrop'):
        cached_dataset(cached, pipeline=pipeline)


def test_missing_cache_says_how_to_build_it(cached, tmp_path):
    with pytest.raises(DatasetError, match='cache_embeddings.py'):
        cached_dataset(cached, embedding_cache=str(tmp_path / 'none'))


def test_changed_model_is_detected(cached, tmp_path):
    from mmengine.dataset import default_collate

    other, encoder = write_base_model('tiny_sd15', str(tmp_path), seed=1)
    model = IPAdapter(other, encoder)
    batch = model.data_preprocessor(default_collate([cached_dataset(cached)[0]]), True)
    with pytest.raises(UserError, match='made with other frozen models'):
        model(**batch)


def test_flip_is_cached_both_ways(tiny_family, cached, tmp_path):
    import copy

    cfg = copy.deepcopy(cached['cfg'])  # a shallow copy would add the flip to it
    pipeline = [dict(t) for t in cfg.train_dataloader.dataset.pipeline]
    crop = next(i for i, t in enumerate(pipeline) if t['type'] == 'CenterCrop')
    pipeline.insert(crop + 1, dict(type='RandomHorizontalFlip', prob=0.5))
    cfg.train_dataloader.dataset.pipeline = pipeline
    build_embedding_cache(cfg, str(tmp_path / 'cache'))
    dataset = cached_dataset(
        cached, pipeline=pipeline, embedding_cache=str(tmp_path / 'cache')
    )
    from safetensors.torch import load_file

    entry = load_file(dataset.get_data_info(0)['cache_file'])
    assert {'latent_mean_flipped', 'latent_std_flipped'} <= set(entry)
    assert not torch.equal(entry['latent_mean'], entry['latent_mean_flipped'])
    means = {
        tuple(dataset[0]['inputs']['latent_mean'].flatten()[:4].tolist())
        for _ in range(20)
    }
    assert len(means) == 2  # both orientations are drawn


def test_plus_caches_patch_features(tiny_families, tmp_path):
    """Plus reads the penultimate hidden states: the cache stores those
    (1 + 7 × 7 tokens for the tiny encoder), in bf16 if asked."""
    from safetensors.torch import load_file

    from ..conftest import TINY_CONFIGS

    cfg = load_tiny_config(
        tiny_families['sd15'], tmp_path / 'work_dir', TINY_CONFIGS['sd15_plus']
    )
    build_embedding_cache(cfg, str(tmp_path), dtype='bf16')
    dataset = cached_dataset(dict(cfg=cfg, folder=str(tmp_path)))
    entry = load_file(dataset.get_data_info(0)['cache_file'])
    assert entry['image_features'].shape == (50, 32)
    assert entry['image_features'].dtype == torch.bfloat16
    assert entry['text_states'].dtype == torch.bfloat16


@pytest.mark.parametrize('variant', ['sd3', 'flux', 'qwen_image'])
def test_dit_families_cache_t5_states_in_bf16(tiny_families, variant, tmp_path):
    """By default an SD3/FLUX cache stores its entries (T5 states above all)
    in bf16; in fp32 a cached batch gives the uncached loss exactly."""
    from mmengine.dataset import default_collate
    from safetensors.torch import load_file

    from diffengine_ipa.registry import MODELS

    from ..conftest import TINY_CONFIGS

    cfg = load_tiny_config(
        tiny_families[variant], tmp_path / 'work_dir', TINY_CONFIGS[variant]
    )
    summary = build_embedding_cache(cfg, str(tmp_path / 'bf16'))
    assert summary['dtype'] == 'bf16' and summary['entry_bytes'] > 0
    dataset = cached_dataset(dict(cfg=cfg, folder=str(tmp_path / 'bf16')))
    entry = load_file(dataset.get_data_info(0)['cache_file'])
    tokens = 77 + 32 if variant == 'sd3' else 32  # CLIP + T5 / T5 only / Qwen
    assert entry['prompt_embeds'].shape[0] == tokens
    assert entry['prompt_embeds'].dtype == torch.bfloat16
    build_embedding_cache(cfg, str(tmp_path / 'fp32'), dtype='fp32')
    fast = cached_dataset(dict(cfg=cfg, folder=str(tmp_path / 'fp32')))
    plain = IPAdapterDataset(
        ann_file=cfg.train_dataloader.dataset.ann_file,
        pipeline=cfg.train_dataloader.dataset.pipeline,
    )
    model = MODELS.build(cfg.model)
    losses = []
    for data in (plain, fast):
        batch = model.data_preprocessor(default_collate([data[0], data[2]]), True)
        torch.manual_seed(0)
        losses.append(model(**batch)['loss'].item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def assert_same_entry(path, data):
    """The rewritten entry holds what the original did (encoders in another
    batch: float rounding)."""
    from safetensors.torch import load, load_file

    got, expected = load_file(path), load(data)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert torch.allclose(got[name], value, atol=1e-5), name


def damaged_copy(cached, tmp_path):
    folder = tmp_path / 'cache'
    shutil.copytree(cached['root'] / 'pristine', folder)
    entries = sorted((folder / 'entries').rglob('*.safetensors'))
    assert len(entries) == 5
    return folder, entries


@pytest.mark.parametrize(
    'content, problem',
    [
        (b'{"settings": {"dtype": "fp32"', 'not valid JSON'),
        (b'', 'not valid JSON'),
        (b'[]', 'not a JSON object'),
        (b'{}', 'lacks "settings"'),
        (None, 'lacks "fingerprint"'),
    ],
)
def test_a_damaged_manifest_is_named_and_rebuilt(cached, tmp_path, content, problem):
    folder, _ = damaged_copy(cached, tmp_path)
    manifest = folder / 'manifest.json'
    if content is None:
        data = json.loads(manifest.read_text())
        del data['fingerprint']
        content = json.dumps(data).encode()
    manifest.write_bytes(content)
    with pytest.raises(DatasetError) as err:
        cached_dataset(cached, embedding_cache=str(folder))
    message = str(err.value)
    assert message.startswith(f'{manifest}: the embedding cache manifest is damaged')
    assert problem in message and 'cache_embeddings.py' in message
    assert '\n' not in message
    summary = build_embedding_cache(cached['cfg'], str(folder))
    assert summary['written'] == 0  # the entries are kept
    assert len(cached_dataset(cached, embedding_cache=str(folder))) == 5


def test_a_cut_short_entry_is_named_and_rewritten(cached, tmp_path):
    folder, entries = damaged_copy(cached, tmp_path)
    data = entries[3].read_bytes()
    entries[3].write_bytes(data[: len(data) - 100])
    with pytest.raises(DatasetError) as err:
        cached_dataset(cached, embedding_cache=str(folder))
    message = str(err.value)
    assert f'1 of 5 entries of the embedding cache {folder} are damaged' in message
    assert (
        f'{entries[3]}: {len(data) - 100} bytes, {len(data)} expected: cut short'
        in (message)
    )
    assert message.endswith('(it rewrites them)') and '\n' not in message
    summary = build_embedding_cache(cached['cfg'], str(folder))
    assert (summary['written'], summary['rewritten']) == (1, 1)
    assert_same_entry(entries[3], data)
    cached_dataset(cached, embedding_cache=str(folder))


def test_an_entry_of_the_wrong_shape_is_named_and_rewritten(cached, tmp_path):
    from safetensors.torch import load_file, save_file

    folder, entries = damaged_copy(cached, tmp_path)
    data = entries[1].read_bytes()
    tensors = load_file(entries[1])
    tensors['latent_mean'] = tensors['latent_mean'][..., :-1].contiguous()
    save_file(tensors, entries[1])
    with pytest.raises(DatasetError) as err:
        cached_dataset(cached, embedding_cache=str(folder))
    shape = list(load_file(entries[2])['latent_mean'].shape)
    assert (
        f'{entries[1]}: latent_mean has shape {shape[:-1] + [shape[-1] - 1]}, the '
        f'cache holds {shape})'
    ) in str(err.value)
    assert build_embedding_cache(cached['cfg'], str(folder))['rewritten'] == 1
    assert_same_entry(entries[1], data)


def test_an_entry_damaged_during_training_is_one_line(cached, tmp_path):
    folder, entries = damaged_copy(cached, tmp_path)
    data = cached_dataset(cached, embedding_cache=str(folder))
    index = next(
        i for i in range(5) if data.get_data_info(i)['cache_file'] == str(entries[0])
    )
    entries[0].write_bytes(b'\0' * 40)
    with pytest.raises(DatasetError, match='damaged embedding cache entry') as err:
        data[index]
    assert '\n' not in str(err.value)


def test_an_image_replaced_with_the_same_size_and_mtime_has_no_entry(cached, tmp_path):
    """``cp -p`` of another image of the same size and modification time: the
    digest the manifest holds for the file is not reused."""
    import copy
    import os
    import subprocess

    folder, _ = damaged_copy(cached, tmp_path)
    ann = tmp_path / 'data.json'
    shutil.copytree(cached['root'] / 'data/images', tmp_path / 'images')
    ann.write_text((cached['root'] / 'data/data.json').read_text())
    cfg = copy.deepcopy(cached['cfg'])
    cfg.train_dataloader.dataset.ann_file = str(ann)
    assert build_embedding_cache(cfg, str(folder))['written'] == 0
    image = tmp_path / 'images/coffee.jpg'
    digests = json.loads((folder / 'manifest.json').read_text())['image_digests']
    assert str(image) in digests  # what a later start would reuse
    cached_dataset(cached, ann_file=str(ann), embedding_cache=str(folder))
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of the scan changed
    stat = image.stat()
    other = tmp_path / 'other.jpg'
    other.write_bytes(bytes(data))
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    subprocess.run(['cp', '-p', str(other), str(image)], check=True)
    assert (image.stat().st_size, image.stat().st_mtime_ns) == (
        stat.st_size,
        stat.st_mtime_ns,
    )
    with pytest.raises(DatasetError, match=r'lacks 1 of 5 records .*coffee.jpg'):
        cached_dataset(cached, ann_file=str(ann), embedding_cache=str(folder))
