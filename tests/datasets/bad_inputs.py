"""A corpus of bad and unusual inputs, generated on the fly."""

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def noise(size=(96, 96), mode='RGB') -> Image.Image:
    rng = np.random.default_rng(0)
    shape = (size[1], size[0], 3) if mode == 'RGB' else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def truncated_jpeg(path: Path) -> None:
    data = io.BytesIO()
    noise((160, 160)).save(data, 'JPEG', quality=95)
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])


def truncated_png(path: Path) -> None:
    data = io.BytesIO()
    noise((160, 160)).save(data, 'PNG')
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])


def huge_header_png(path: Path, side: int = 100_000) -> None:
    """A PNG whose header claims ``side`` x ``side`` pixels, with no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack('>I', len(body))
            + kind
            + body
            + struct.pack('>I', zlib.crc32(kind + body))
        )

    ihdr = struct.pack('>IIBBBBB', side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IEND', b''))


def exif_rotated_jpeg(path: Path) -> None:
    """128 wide, 96 high as stored; EXIF orientation 6 (rotate 90° CW)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    noise((128, 96)).save(path, 'JPEG', exif=exif)


def sixteen_bit_png(path: Path) -> None:
    Image.fromarray(np.full((96, 96), 32896, np.uint16)).save(path)  # 128·257


def rgba_png(path: Path) -> None:
    image = Image.new('RGBA', (96, 96), (0, 0, 0, 0))  # fully transparent
    image.paste((255, 0, 0, 255), (0, 0, 48, 96))  # left half opaque red
    image.save(path)


def palette_png(path: Path) -> None:
    noise().convert('P', palette=Image.Palette.ADAPTIVE).save(path)


def cmyk_jpeg(path: Path) -> None:
    Image.new('CMYK', (96, 96), (0, 255, 255, 0)).save(path, 'JPEG')


def grayscale_jpeg(path: Path) -> None:
    noise(mode='L').save(path, 'JPEG')


def good_jpeg(path: Path) -> None:
    noise().save(path, 'JPEG')


def _jpeg_until_scan(path: Path, tail: bytes) -> None:
    """A good JPEG's headers up to its scan header, then ``tail``."""
    data = io.BytesIO()
    noise().save(data, 'JPEG')
    data = data.getvalue()
    scan = data.index(b'\xff\xda')
    length = int.from_bytes(data[scan + 2 : scan + 4], 'big')
    path.write_bytes(data[: scan + 2 + length] + tail)


def header_only_jpeg(path: Path) -> None:
    _jpeg_until_scan(path, b'\xff\xd9')  # PIL decodes it to flat gray


def zero_padded_jpeg(path: Path) -> None:
    """A download cut short into a preallocated file: data, then zeros."""
    data = io.BytesIO()
    noise().save(data, 'JPEG')
    data = data.getvalue()
    keep = len(data) // 3
    path.write_bytes(data[:keep] + bytes(len(data) - keep))


def garbage_jpeg(path: Path) -> None:
    rng = np.random.default_rng(2)
    _jpeg_until_scan(path, rng.bytes(4000) + b'\xff\xd9')


def float_tiff(path: Path, values=None) -> None:
    """A 32-bit float TIFF with values in [0, 1] (a gradient)."""
    if values is None:
        values = np.tile(np.linspace(0, 1, 96, dtype=np.float32), (96, 1))
    Image.fromarray(values).save(path)


def int32_tiff(path: Path) -> None:
    """A 32-bit integer TIFF using the full range (a gradient)."""
    values = np.tile(np.linspace(0, 2**31 - 1, 96), (96, 1)).astype(np.int32)
    Image.fromarray(values).save(path)


def symlink_to(target: str):
    def write(path: Path) -> None:
        path.symlink_to(target)

    return write


# name → (how to write images/<file>, file name, caption, expected reason or
# None for a usable record). '@same' re-uses the good record.
CASES = {
    'truncated JPEG': (truncated_jpeg, 'cut.jpg', 'x', 'truncated or corrupt'),
    'truncated PNG': (truncated_png, 'cut.png', 'x', 'truncated or corrupt image'),
    'zero-byte file': (
        lambda p: p.write_bytes(b''),
        'empty.jpg',
        'x',
        'zero-byte file',
    ),
    'text named .png': (
        lambda p: p.write_text('not an image'),
        'notes.png',
        'x',
        'not an image',
    ),
    '1x1 image': (
        lambda p: noise((1, 1)).save(p),
        'dot.png',
        'x',
        'too small (1x1 px; min_image_side is 64)',
    ),
    'huge header': (huge_header_png, 'huge.png', 'x', 'too large'),
    'missing file': (None, 'missing.jpg', 'x', 'no such file'),
    'caption null': (good_jpeg, 'a.jpg', None, 'caption ("text") is null'),
    'caption number': (good_jpeg, 'b.jpg', 3, 'is not a string: 3'),
    'caption empty': (good_jpeg, 'c.jpg', '  ', 'caption ("text") is empty'),
    'duplicate record': (None, 'good.jpg', 'a good caption', 'duplicate of record 0'),
    '../ path': (None, '../../outside.jpg', 'x', 'path escapes the image root'),
    'CMYK JPEG': (cmyk_jpeg, 'cmyk.jpg', 'x', None),
    '16-bit PNG': (sixteen_bit_png, 'deep.png', 'x', None),
    'RGBA PNG': (rgba_png, 'alpha.png', 'x', None),
    'palette PNG': (palette_png, 'palette.png', 'x', None),
    'grayscale JPEG': (grayscale_jpeg, 'gray.jpg', 'x', None),
    'EXIF-rotated JPEG': (exif_rotated_jpeg, 'rotated.jpg', 'x', None),
    'unicode name and caption': (
        good_jpeg,
        'chat_été_猫.jpg',
        'un chat en été, 猫 🐱',
        None,
    ),
    'header-only JPEG': (
        header_only_jpeg,
        'header.jpg',
        'x',
        'corrupt JPEG: no image data',
    ),
    'zero-padded JPEG': (
        zero_padded_jpeg,
        'padded.jpg',
        'x',
        'corrupt JPEG: no end-of-image marker',
    ),
    'garbage-filled JPEG': (garbage_jpeg, 'garbage.jpg', 'x', 'corrupt JPEG'),
    'float TIFF': (float_tiff, 'float.tif', 'x', None),
    '32-bit TIFF': (int32_tiff, 'int32.tif', 'x', None),
    'NaN float TIFF': (
        lambda p: float_tiff(p, np.full((96, 96), np.nan, np.float32)),
        'nan.tif',
        'x',
        'pixel values are NaN/Inf',
    ),
    'caption with a lone surrogate': (
        good_jpeg,
        'd.jpg',
        'a \ud800 cat',
        'contains an invalid character',
    ),
    'caption with a NUL byte': (
        good_jpeg,
        'e.jpg',
        'a\x00cat',
        'caption ("text") contains a NUL byte',
    ),
    'path with a NUL byte': (
        None,
        'good\x00.jpg',
        'x',
        '"image_file" contains a NUL byte',
    ),
    'symlink out of the root': (
        symlink_to('../../outside.jpg'),
        'link.jpg',
        'x',
        'a symlink that leads out of the image',
    ),
    'symlink within the root': (symlink_to('good.jpg'), 'alias.jpg', 'y', None),
}


def write_records(path: Path, records: list) -> None:
    """``records`` as UTF-8 JSON; what UTF-8 cannot hold (a lone surrogate)
    as a JSON escape, as a JSON writer would."""
    text = json.dumps(records, ensure_ascii=False)
    try:
        path.write_text(text, encoding='utf-8')
    except UnicodeEncodeError:
        path.write_text(json.dumps(records), encoding='utf-8')


def write_case(root: Path, name: str) -> list[dict]:
    """``root/data.json`` with a good record then the case's record, and the
    images they name (plus ``root/../outside.jpg``)."""
    write, file, text, _ = CASES[name]
    (root / 'images').mkdir(parents=True, exist_ok=True)
    good_jpeg(root / 'images/good.jpg')
    good_jpeg(root.parent / 'outside.jpg')
    if write is not None:
        write(root / 'images' / file)
    records = [
        {'image_file': 'images/good.jpg', 'text': 'a good caption'},
        {'image_file': f'images/{file}', 'text': text},
    ]
    return records
