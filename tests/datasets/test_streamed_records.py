"""A large JSON list or JSON Lines file is read as a stream: the reader's
peak memory does not grow with the number of records."""

import json
import tracemalloc

import pytest

from diffengine_ipa.datasets import record_sources
from diffengine_ipa.datasets.record_sources import iter_json_records


def write(path, count, kind):
    records = (
        json.dumps({'image_file': f'img/{i % 100}.jpg', 'text': f'caption {i}'})
        for i in range(count)
    )
    with open(path, 'w') as f:
        if kind == 'json':
            f.write('[\n' + ',\n'.join(records) + '\n]\n')
        else:
            f.write('\n'.join(records) + '\n')


def peak_while_reading(path):
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_json_records(str(path)))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize('kind', ['json', 'jsonl'])
def test_peak_memory_does_not_grow_with_the_records(tmp_path, monkeypatch, kind):
    """10⁴ and 10⁵ records (0.4 and 4 MB) with 64 KiB chunks: the same peak
    (a whole-file reader's grows tenfold)."""
    monkeypatch.setattr(record_sources, '_CHUNK', 1 << 16, raising=False)
    peaks = {}
    for count in (10**4, 10**5):
        write(tmp_path / f'{count}.{kind}', count, kind)
        got, peaks[count] = peak_while_reading(tmp_path / f'{count}.{kind}')
        assert got == count
    assert peaks[10**5] < 1.3 * peaks[10**4] + (64 << 10), peaks
    assert peaks[10**5] < 1 << 20, peaks  # well under the 4 MB file


@pytest.mark.parametrize('chunk', [5, 64, 1 << 20])
@pytest.mark.parametrize('kind', ['json', 'jsonl', 'json lines with CRLF'])
def test_records_are_the_same_whatever_the_chunk(tmp_path, monkeypatch, chunk, kind):
    """Chunk boundaries inside a record, a multi-byte character, a number
    or a CRLF give the same records as reading the file whole."""
    monkeypatch.setattr(record_sources, '_CHUNK', chunk)
    records = [
        {'image_file': f'{i}.jpg', 'text': 'été 猫 ' * (i % 5), 'n': 12345 * i}
        for i in range(40)
    ]
    text = {
        'json': json.dumps(records, ensure_ascii=False, indent=1),
        'jsonl': '\n'.join(json.dumps(r, ensure_ascii=False) for r in records),
        'json lines with CRLF': '\r\n'.join(json.dumps(r) for r in records) + '\r\n',
    }[kind]
    path = tmp_path / 'data.json'
    path.write_bytes(text.encode('utf-8'))
    assert list(iter_json_records(str(path))) == records
