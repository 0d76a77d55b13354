"""WebDataset shards: split across ranks × workers, each sample once."""

import io
import json

import pytest
from torch.utils.data import DataLoader

from diffengine_ipa.datasets import IPAdapterDataset, IPAdapterWebDataset
from diffengine_ipa.datasets.transforms import LoadImage
from diffengine_ipa.errors import DatasetError

from .bad_inputs import noise

wds = pytest.importorskip('webdataset')


class Keep:
    """The pipeline of these tests: the caption and the decoded image."""

    def __call__(self, info):
        info = LoadImage()(info)
        return dict(
            text=info['text'],
            pixels=bytes(info['img'].tobytes()),
            bucket=info.get('bucket'),
        )


def png(size) -> bytes:
    data = io.BytesIO()
    noise(size).save(data, 'PNG')
    return data.getvalue()


def write_shards(root, shards=8, per_shard=3, sizes=((80, 64),)):
    number = 0
    for s in range(shards):
        with wds.TarWriter(str(root / f'part-{s:03d}.tar')) as sink:
            for _ in range(per_shard):
                size = sizes[number % len(sizes)]
                sink.write(
                    {
                        '__key__': f'{number:05d}',
                        'png': png(size),
                        'txt': f'caption {number}',
                    }
                )
                number += 1
    return str(root / f'part-{{000..{shards - 1:03d}}}.tar')


def epoch(shards, rank, world_size, workers=2, **kwargs):
    dataset = IPAdapterWebDataset(
        shards,
        [Keep()],
        num_workers=workers,
        rank=rank,
        world_size=world_size,
        min_image_side=16,
        **kwargs,
    )
    loader = DataLoader(dataset, batch_size=None, num_workers=workers)
    texts = [sample['text'] for sample in loader]
    assert len(texts) == len(dataset)
    return texts


@pytest.mark.parametrize('shards', [8, 2])  # by shard; by sample
def test_two_ranks_two_workers_see_each_sample_once(tmp_path, shards):
    pattern = write_shards(tmp_path, shards, 24 // shards)
    runs = [[epoch(pattern, rank, 2) for rank in range(2)] for _ in range(2)]
    seen = runs[0][0] + runs[0][1]
    assert sorted(seen) == sorted(f'caption {i}' for i in range(24))
    assert runs[0] == runs[1]  # the same split and order on a rerun


def test_samples_equal_the_json_lists(tmp_path):
    pattern = write_shards(tmp_path, 2, 2)
    records = []
    for i in range(4):
        (tmp_path / f'{i}.png').write_bytes(png((80, 64)))
        records.append({'image_file': f'{i}.png', 'text': f'caption {i}'})
    (tmp_path / 'data.json').write_text(json.dumps(records))
    listed = IPAdapterDataset(
        ann_file=str(tmp_path / 'data.json'), pipeline=[Keep()], min_image_side=16
    )
    expected = sorted((s['text'], s['pixels']) for s in (listed[i] for i in range(4)))
    streamed = IPAdapterWebDataset(
        pattern, [Keep()], min_image_side=16, rank=0, world_size=1
    )
    assert sorted((s['text'], s['pixels']) for s in streamed) == expected


def test_buckets_fill_whole_batches(tmp_path):
    pattern = write_shards(tmp_path, 4, 8, sizes=((96, 48), (48, 96), (64, 64)))
    dataset = IPAdapterWebDataset(
        pattern,
        [Keep()],
        batch_size=2,
        num_workers=2,
        rank=0,
        world_size=1,
        min_image_side=16,
        buckets=dict(resolution=64, step=16, max_aspect=2),
    )
    loader = DataLoader(
        dataset, batch_size=2, num_workers=2, collate_fn=lambda batch: batch
    )
    batches = list(loader)
    assert len(batches) == len(loader) > 0
    for batch in batches:
        assert len({sample['bucket'] for sample in batch}) == 1


def test_a_bad_member_is_one_line_naming_shard_and_key(tmp_path):
    with wds.TarWriter(str(tmp_path / 'bad.tar')) as sink:
        sink.write({'__key__': 'ok', 'png': png((80, 64)), 'txt': 'fine'})
        sink.write({'__key__': 'cut', 'png': png((80, 64))[:40], 'txt': 'broken'})
    dataset = IPAdapterWebDataset(
        str(tmp_path / 'bad.tar'), [Keep()], min_image_side=16, rank=0, world_size=1
    )
    with pytest.raises(DatasetError, match=r'bad\.tar#cut: '):
        list(dataset)
    with pytest.raises(DatasetError, match='no such WebDataset shard'):
        IPAdapterWebDataset(str(tmp_path / 'none-{0..3}.tar'), [Keep()])


@pytest.mark.slow  # a Runner training (~30 s on 2 busy CPUs)
def test_shards_train_through_the_runner(tiny_family, tmp_path):
    from mmengine.runner import Runner

    from ..conftest import load_tiny_config

    pattern = write_shards(tmp_path, 2, 2, sizes=((80, 72),))
    cfg = load_tiny_config(
        tiny_family, tmp_path / 'work', **{'train_cfg.max_epochs': 1}
    )
    cfg.train_dataloader = dict(
        batch_size=2,
        num_workers=0,
        sampler=None,
        collate_fn=dict(type='default_collate'),
        dataset=dict(
            type='IPAdapterWebDataset',
            shards=pattern,
            batch_size=2,
            pipeline=cfg.train_dataloader.dataset.pipeline,
        ),
    )
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h['type'] != 'IPAdapterVisualizationHook'
    ]
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2


def test_a_cut_shard_and_a_non_utf8_caption(tmp_path):
    with wds.TarWriter(str(tmp_path / 'a.tar')) as sink:
        for n in range(4):
            sink.write(
                {
                    '__key__': f'{n}',
                    'png': png((80, 64)),
                    'txt': b'caption' if n != 1 else b'caf\xe9',
                }
            )
    data = (tmp_path / 'a.tar').read_bytes()
    (tmp_path / 'cut.tar').write_bytes(data[: len(data) * 3 // 4])
    for on_bad_record in ('strict', 'skip'):
        dataset = IPAdapterWebDataset(
            str(tmp_path / 'a.tar'),
            [Keep()],
            min_image_side=16,
            rank=0,
            world_size=1,
            on_bad_record=on_bad_record,
        )
        if on_bad_record == 'strict':
            with pytest.raises(DatasetError, match=r'a\.tar#1: .*not UTF-8.*caf\\xe9'):
                list(dataset)
        else:  # 3 usable, and the first again for the skipped one (a pad)
            assert len(list(dataset)) == len(dataset) == 4
    with pytest.raises(
        DatasetError,
        match=r'cut\.tar: not a readable tar '
        r'shard \(unexpected end of data\)',
    ):
        IPAdapterWebDataset(
            str(tmp_path / 'cut.tar'), [Keep()], min_image_side=16, rank=0, world_size=1
        )


def write_with_bad_samples(root, shards=4, per_shard=4, bad=(0, 1, 2)):
    """Shards whose first one (rank 0's, worker 0's) has ``bad`` samples
    cut short."""
    number = 0
    for s in range(shards):
        with wds.TarWriter(str(root / f'part-{s:03d}.tar')) as sink:
            for i in range(per_shard):
                data = png((80, 64))
                if s == 0 and i in bad:
                    data = data[:40]
                sink.write(
                    {
                        '__key__': f'{number:05d}',
                        'png': data,
                        'txt': f'caption {number}',
                    }
                )
                number += 1
    return str(root / f'part-{{000..{shards - 1:03d}}}.tar')


def test_skipped_samples_leave_every_rank_the_same_count(tmp_path):
    """Rank 0's shard loses 3 of its 4 samples: it reads its shard again
    (a pad), and yields as many as rank 1."""
    pattern = write_with_bad_samples(tmp_path)
    counts = [
        len(epoch(pattern, rank, 2, workers=1, on_bad_record='skip'))
        for rank in range(2)
    ]
    assert counts[0] == counts[1] > 0  # epoch() also checks len(dataset)
    texts = epoch(pattern, 0, 2, workers=1, on_bad_record='skip')
    assert 'caption 3' in texts and not {'caption 0', 'caption 1'} & set(texts)


def test_a_worker_with_no_usable_sample_is_one_line(tmp_path):
    pattern = write_with_bad_samples(tmp_path, shards=2, per_shard=2, bad=(0, 1))
    with pytest.raises(
        DatasetError, match='no usable sample in the shards of worker 0'
    ):
        epoch(pattern, 0, 2, workers=1, on_bad_record='skip')


@pytest.mark.slow  # two gloo processes (~20 s on 2 busy CPUs)
def test_ranks_under_torchrun_step_alike_when_samples_are_skipped(tmp_path):
    import os
    import subprocess
    import sys

    from ..conftest import REPO
    from ..engine.test_distributed import free_port

    pattern = write_with_bad_samples(tmp_path)
    records = []
    for i in range(8):
        name = f'{i}.png'
        (tmp_path / name).write_bytes(png((80, 64)) if i not in (0, 2, 5) else b'')
        records.append({'image_file': name, 'text': f'record {i}'})
    (tmp_path / 'data.json').write_text(json.dumps(records))
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'torch.distributed.run',
            '--nproc_per_node',
            '2',
            '--master_port',
            str(free_port()),
            os.path.join(REPO, 'tests/datasets/web_dataset_ranks.py'),
            pattern,
            str(tmp_path / 'data.json'),
            str(tmp_path / 'cache'),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=dict(
            os.environ,
            OMP_NUM_THREADS='1',
            PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
        ),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = json.loads(result.stdout.strip().splitlines()[-1])
    assert ranks[0] == ranks[1], ranks
    assert ranks[0]['shards'] == 4 and ranks[0]['records'] == 2  # 5 usable records
