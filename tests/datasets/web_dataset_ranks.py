"""Run under torchrun (gloo): each rank counts the batches it gets from
shards where rank 0's hold bad samples (``on_bad_record='skip'``); the
counts of all ranks are gathered and printed as JSON by rank 0."""

import json
import sys

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from diffengine_ipa.datasets import IPAdapterDataset, IPAdapterWebDataset
from diffengine_ipa.datasets.transforms import LoadImage


class Keep:
    def __call__(self, info):
        return dict(text=LoadImage()(info)['text'])


def main() -> None:
    shards, ann = sys.argv[1], sys.argv[2]
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    streamed = IPAdapterWebDataset(
        shards,
        [Keep()],
        num_workers=1,
        batch_size=2,
        min_image_side=16,
        on_bad_record='skip',
    )
    loader = DataLoader(streamed, batch_size=2, num_workers=1)
    counts = {'shards': sum(1 for _ in loader)}
    listed = IPAdapterDataset(
        ann_file=ann,
        pipeline=[Keep()],
        min_image_side=16,
        on_bad_record='skip',
        index_cache=sys.argv[3],
    )
    sampler = torch.utils.data.DistributedSampler(listed, shuffle=False)
    counts['records'] = sum(
        1 for _ in DataLoader(listed, batch_size=2, sampler=sampler)
    )
    gathered = [None] * world
    dist.all_gather_object(gathered, counts)
    if rank == 0:
        print(json.dumps(gathered))
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
