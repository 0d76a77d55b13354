"""Many strings as one UTF-8 buffer and offsets, saved and memory-mapped."""

import os.path as osp
from array import array
from collections.abc import Iterable, Iterator

import numpy as np

__all__ = ['PackedStrings', 'StringPacker', 'load_array']


class PackedStrings:
    """Strings as one UTF-8 buffer and the end offset of each."""

    def __init__(self, data: np.ndarray, ends: np.ndarray) -> None:
        self.data, self.ends = data, ends

    @classmethod
    def pack(cls, strings: Iterable[str]) -> 'PackedStrings':
        packer = StringPacker()
        for text in strings:
            packer.append(text)
        return packer.packed()

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        start = int(self.ends[i - 1]) if i else 0
        return bytes(self.data[start : int(self.ends[i])]).decode(
            'utf-8', 'surrogatepass'
        )

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def save(self, folder: str, name: str) -> None:
        np.save(osp.join(folder, f'{name}.npy'), self.data)
        np.save(osp.join(folder, f'{name}_ends.npy'), self.ends)

    @classmethod
    def load(cls, folder: str, name: str) -> 'PackedStrings':
        return cls(load_array(folder, name), load_array(folder, f'{name}_ends'))


class StringPacker:
    """Builds :class:`PackedStrings` one string at a time: no list of the
    strings is ever held."""

    def __init__(self) -> None:
        self.data, self.ends = bytearray(), array('q')

    def append(self, text: str) -> None:
        self.data += text.encode('utf-8', 'surrogatepass')
        self.ends.append(len(self.data))

    def packed(self) -> PackedStrings:
        return PackedStrings(
            np.frombuffer(self.data, np.uint8), np.frombuffer(self.ends, np.int64)
        )


def load_array(folder: str, name: str) -> np.ndarray:
    path = osp.join(folder, f'{name}.npy')
    try:
        return np.load(path, mmap_mode='r')
    except ValueError:  # an empty array cannot be mapped
        return np.load(path)
