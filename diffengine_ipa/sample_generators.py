"""Random generators keyed by (run seed, epoch, sample index).

Every random draw made for one training sample (the data pipeline's crop and
flip, the model's condition drop, timestep and noise) comes from a generator
seeded by the run's seed, the epoch and the sample's index in the dataset,
each consumer with its own stream. A sample therefore gets the same numbers
whichever batch, DataLoader worker, data-parallel rank or gradient-
accumulation step it lands on, and a resumed run draws what an uninterrupted
one would.
"""

import hashlib
import multiprocessing
from multiprocessing import context

import torch

__all__ = ['sample_generator', 'DrawKey']


def sample_generator(
    seed: int,
    epoch: int,
    sample_idx: int,
    device: torch.device | str = 'cpu',
    stream: str = '',
) -> torch.Generator:
    """A generator for one sample of one epoch of a run; ``stream`` names
    the consumer, so that two consumers draw independent numbers."""
    text = f'{seed}:{epoch}:{sample_idx}' + (f':{stream}' if stream else '')
    key = hashlib.blake2b(text.encode(), digest_size=8).digest()
    generator = torch.Generator(device=device)
    generator.manual_seed(int.from_bytes(key, 'little') >> 1)
    return generator


class DrawKey:
    """The run's seed and the current epoch, as a dataset's DataLoader
    workers see them: in shared memory, so persistent workers started in an
    earlier epoch read the epoch the main process sets now."""

    def __init__(
        self, seed: int = 0, epoch: int = 0, shared: object | None = None
    ) -> None:
        self._values = (
            shared
            if shared is not None
            else (multiprocessing.RawArray('q', [seed, epoch]))
        )

    def set(self, seed: int, epoch: int) -> None:
        self._values[0], self._values[1] = seed, epoch

    def get(self) -> tuple[int, int]:
        return int(self._values[0]), int(self._values[1])

    def __deepcopy__(self, memo: dict) -> 'DrawKey':
        return DrawKey(*self.get())

    def __reduce__(self):
        if context.get_spawning_popen() is not None:  # a worker starting
            return DrawKey, (0, 0, self._values)
        return DrawKey, self.get()  # elsewhere: a snapshot
