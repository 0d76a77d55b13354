"""Check a dataset's images in parallel, with a progress bar."""

import multiprocessing
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ImageError
from ..image_io import check_image
from .record_check import symlink_problem

__all__ = ['EMBEDDED', 'check_images']

EMBEDDED = 'row:'  # locator prefix of an image stored inside the source


_WORKER_STATE: dict[str, Any] = {}


def _check_one(locator: str) -> tuple[int, int, str | None]:
    """``(width, height, None)`` of a usable image, or ``(0, 0, reason)``."""
    source, root = _WORKER_STATE['source'], _WORKER_STATE['root']
    try:
        if locator.startswith(EMBEDDED):
            row, column = locator[len(EMBEDDED) :].split(':')
            name = f'{source.name}[row {row}]'
            width, height = check_image(name, 1, source.image_bytes(int(row), column))
        else:
            problem = symlink_problem(locator, root)
            if problem:
                return 0, 0, problem
            width, height = check_image(locator, 1)
    except ImageError as err:
        return 0, 0, err.reason
    return width, height, None


def _check_chunk(chunk: list[tuple[int, str]]) -> list[tuple]:
    return [(i, *_check_one(locator)) for i, locator in chunk]


def check_images(
    todo: list[tuple[int, str]], source: Any, workers: int, progress: bool
) -> Iterator[tuple]:
    """``(file id, width, height, reason)`` for each ``(file id, locator)``,
    checked by ``workers`` processes, with a progress bar."""
    _WORKER_STATE.update(source=source, root=source.image_root)
    chunks = [todo[i : i + 64] for i in range(0, len(todo), 64)]
    bar = None
    if progress and len(todo) >= 256:
        from tqdm import tqdm

        bar = tqdm(
            total=len(todo),
            desc=f'checking images of {source.name}',
            unit='img',
            smoothing=0.1,
        )
    try:
        if workers <= 1 or len(chunks) <= 1:
            results = map(_check_chunk, chunks)
            yield from _with_bar(results, bar)
        else:
            context = multiprocessing.get_context('fork')
            with context.Pool(workers) as pool:
                yield from _with_bar(pool.imap_unordered(_check_chunk, chunks), bar)
    finally:
        if bar is not None:
            bar.close()


def _with_bar(results: Iterable[list], bar: Any) -> Iterator[tuple]:
    for chunk in results:
        yield from chunk
        if bar is not None:
            bar.update(len(chunk))
