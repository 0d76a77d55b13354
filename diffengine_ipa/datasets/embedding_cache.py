"""Precomputed outputs of the frozen encoders, one file per sample.

What a cache entry holds, per sample: the VAE latent distribution (mean and
std, so the latent is still *sampled* every step) of the training image after
the deterministic transforms, and of its mirror image when the pipeline flips;
the prompt encoder's outputs (``text_states``, and SDXL's ``text_embeds``);
the image features the projection reads; SDXL's ``time_ids``.

An entry's key hashes the image file's bytes, the caption, the pipeline
settings and the frozen encoders' weight fingerprint, so a changed image or
caption has no entry; ``manifest.json`` records the settings and the
fingerprint, so a cache made for another pipeline or other models is refused
(the model checks the fingerprint on its first cached batch). A file's digest
is reused while its size, modification time, status-change time and inode
are unchanged (a replaced file, even with its modification time kept, is
hashed again).

A damaged cache is named in one line and rebuilt by
``tools/cache_embeddings.py``: a manifest that is not JSON or lacks a field
(the entries are kept: their keys do not depend on it), an entry cut short
or holding tensors of other shapes than the manifest's ``layout`` (those
entries are rewritten).

Random crops cannot be cached (each epoch would need another crop): use
``CenterCrop``, or train without the cache. A random flip is cached as both
orientations, chosen per step with the flip's probability.
"""

import hashlib
import json
import os
import os.path as osp
import re
import struct
from typing import Any

import numpy as np
import torch

from ..errors import DatasetError
from ..fileio import atomic_write_bytes
from .record_sources import stat_key

__all__ = [
    'entry_header',
    'layout_key',
    'cached_reference',
    'cached_references',
    'extra_feature_key',
    'pick_reference_features',
    'CACHE_VERSION',
    'EmbeddingCache',
    'cacheable_pipeline',
    'settings_of',
]

CACHE_VERSION = 1
_UNCACHEABLE = ('RandomCrop',)
_FLIP = 'RandomHorizontalFlip'


def _type_name(transform: dict) -> str:
    kind = transform['type']
    return kind if isinstance(kind, str) else kind.__name__


def cacheable_pipeline(pipeline: list[dict]) -> tuple[list[dict], float]:
    """The deterministic transforms of a training pipeline (without the flip
    and ``PackInputs``), and the flip probability (0 without a flip)."""
    steps, flip = [], 0.0
    for transform in pipeline:
        kind = _type_name(transform)
        if kind in _UNCACHEABLE or (
            kind == 'ResizeCropToBucket' and transform.get('random_crop')
        ):
            raise DatasetError(
                f'the pipeline has {kind}, which an embedding cache cannot '
                'hold (each epoch would crop elsewhere): use CenterCrop, or '
                'train without embedding_cache'
            )
        if kind == _FLIP:
            flip = float(transform.get('prob', 0.5))
        elif kind != 'PackInputs':
            steps.append(dict(transform))
    return steps, flip


def settings_of(pipeline: list[dict], dtype: str) -> dict[str, Any]:
    """What, besides images, captions and models, decides an entry."""
    steps, flip = cacheable_pipeline(pipeline)
    return dict(version=CACHE_VERSION, transforms=steps, flip=flip, dtype=dtype)


def _digest(*parts: str) -> str:
    return hashlib.sha256('\x00'.join(parts).encode()).hexdigest()


def cached_reference(info: dict) -> str | None:
    """The reference whose features an entry stores as ``image_features``:
    the record's first one, or ``None`` (the target)."""
    paths = info.get('reference_paths')
    return paths[0] if paths else None


def cached_references(info: dict) -> list[str]:
    """Every reference of a record (an entry holds the features of each:
    ``image_features``, then ``image_features_1``, ...)."""
    return list(info.get('reference_paths') or [])


def extra_feature_key(index: int) -> str:
    """The entry key of the ``index``-th reference's features (index ≥ 1)."""
    return f'image_features_{index}'


def pick_reference_features(inputs: dict, index: int) -> dict:
    """``inputs`` with the ``index``-th reference's features as
    ``image_features`` and the others' keys removed."""
    extra = [key for key in inputs if re.fullmatch(r'image_features_\d+', key)]
    if index:
        inputs['image_features'] = inputs[extra_feature_key(index)]
    for key in extra:
        del inputs[key]
    return inputs


_REBUILD = 'run `python tools/cache_embeddings.py CONFIG` to rebuild it'
_DTYPE_BYTES = dict(F64=8, F32=4, F16=2, BF16=2, I64=8, I32=4, I16=2, I8=1, U8=1)


def _manifest_problem(manifest: Any) -> str | None:
    """What makes a manifest unusable for reading the cache, if anything."""
    if not isinstance(manifest, dict):
        return 'not a JSON object'
    settings = manifest.get('settings')
    if not isinstance(settings, dict):
        return 'it lacks "settings"'
    for field, kind in (('dtype', str), ('flip', (int, float)), ('version', int)):
        if not isinstance(settings.get(field), kind):
            return f'its settings lack "{field}"'
    if not isinstance(manifest.get('fingerprint'), str):
        return 'it lacks "fingerprint"'
    return None


def layout_key(bucket: Any) -> str:
    """The key of a bucket's shapes in the manifest's ``layout``."""
    return 'default' if bucket is None else f'{bucket[0]}x{bucket[1]}'


def entry_header(path: str) -> dict[str, list[int]]:
    """The tensor shapes of a safetensors entry, read from its header; a
    :class:`DatasetError` when the file is not whole (cut short, grown, or
    not safetensors)."""
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(8)
            length = struct.unpack('<Q', head)[0] if len(head) == 8 else -1
            if not 2 <= length <= min(size - 8, 1 << 26):
                raise ValueError('no safetensors header')
            header = json.loads(f.read(length))
        shapes, end = {}, 0
        for name, meta in header.items():
            if name == '__metadata__':
                continue
            start, stop = meta['data_offsets']
            count = int(np.prod(meta['shape'], dtype=np.int64))
            if stop - start != count * _DTYPE_BYTES[meta['dtype']]:
                raise ValueError(f'{name} does not hold its shape')
            shapes[name], end = list(meta['shape']), max(end, stop)
        if size != 8 + length + end:
            raise ValueError(
                f'{size} bytes, {8 + length + end} expected: cut short'
                if size < 8 + length + end
                else f'{size} bytes, {8 + length + end} expected'
            )
    except (OSError, ValueError, KeyError, TypeError, struct.error) as err:
        raise DatasetError(f'{path}: damaged embedding cache entry ({err})') from None
    return shapes


class EmbeddingCache:
    """A cache folder: ``manifest.json`` and ``entries/<ab>/<key>.safetensors``.

    Args:
        folder: The cache folder.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.manifest_path = osp.join(folder, 'manifest.json')
        self.manifest: dict[str, Any] = {}
        self.damage: str | None = None  # why the manifest cannot be read
        if osp.isfile(self.manifest_path):
            try:
                with open(self.manifest_path, 'rb') as f:
                    manifest = json.loads(f.read())
            except (OSError, ValueError) as err:
                self.damage = f'not valid JSON ({err})'
            else:
                self.damage = _manifest_problem(manifest)
                if isinstance(manifest, dict):
                    self.manifest = manifest
        if not isinstance(self.manifest.setdefault('image_digests', {}), dict):
            self.manifest['image_digests'] = {}

    def entry_problem(self, path: str, bucket: Any = None) -> str | None:
        """Why an entry cannot be used (cut short, or tensors of other shapes
        than the manifest's layout for its bucket), or ``None``."""
        try:
            shapes = entry_header(path)
        except DatasetError as err:
            return str(err).rsplit('(', 1)[-1].rstrip(')')
        layout = self.manifest.get('layout', {}).get(layout_key(bucket))
        if not isinstance(layout, dict):
            return None  # a cache written before layouts were recorded
        for name, shape in layout.items():
            got = shapes.get(name)
            if got is None and not re.fullmatch(r'image_features_\d+', name):
                return f'it lacks {name}'
            if got is not None and got != shape:
                return f'{name} has shape {got}, the cache holds {shape}'
        features = layout.get('image_features')
        for name, got in shapes.items():
            extra = re.fullmatch(r'image_features_\d+', name)
            if extra and features is not None and got != features:
                return f'{name} has shape {got}, the cache holds {features}'
        return None

    # --- keys and files -----------------------------------------------------

    def image_digest(self, path: str) -> str:
        """SHA-256 of the file's bytes; reused from the manifest while the
        file's size and modification time are unchanged."""
        stat = list(stat_key(os.stat(path)))
        known = self.manifest['image_digests'].get(osp.abspath(path))
        if isinstance(known, list) and len(known) == 5 and known[:4] == stat:
            return known[4]
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
        self.manifest['image_digests'][osp.abspath(path)] = [
            *stat,
            digest.hexdigest(),
        ]
        return digest.hexdigest()

    def entry_key(
        self,
        img_path: str,
        text: str,
        settings: dict,
        fingerprint: str,
        bucket: tuple | None = None,
        reference_path: str | list[str] | None = None,
    ) -> str:
        """The key of one sample's entry: its image, caption, aspect-ratio
        bucket and references (when it has its own; all of them) count."""
        parts = [
            self.image_digest(img_path),
            text,
            json.dumps(settings, sort_keys=True),
            fingerprint,
        ]
        if bucket is not None:
            parts.append(f'bucket {bucket[0]}x{bucket[1]}')
        paths = (
            [reference_path]
            if isinstance(reference_path, str)
            else reference_path or []
        )
        for path in paths:
            parts.append('reference ' + self.image_digest(path))
        return _digest(*parts)[:40]

    def entry_path(self, key: str) -> str:
        return osp.join(self.folder, 'entries', key[:2], f'{key}.safetensors')

    # --- writing (tools/cache_embeddings.py) ----------------------------------

    def write_entry(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save

        data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        atomic_write_bytes(self.entry_path(key), data)  # full disk: one line

    def write_manifest(
        self,
        settings: dict,
        fingerprint: str,
        sources: dict,
        layout: dict | None = None,
    ) -> None:
        """Write ``manifest.json`` (``layout``: the tensor shapes of an entry,
        per bucket, added to those recorded)."""
        if self.manifest.get('fingerprint') != fingerprint or (
            self.manifest.get('settings') != settings
        ):
            self.manifest.pop('layout', None)
        known = self.manifest.setdefault('layout', {})
        if not isinstance(known, dict):
            known = self.manifest['layout'] = {}
        known.update(layout or {})
        self.manifest.update(
            settings=settings, fingerprint=fingerprint, sources=sources
        )
        self.damage = None
        atomic_write_bytes(
            self.manifest_path, json.dumps(self.manifest, indent=1).encode()
        )

    # --- reading (IPAdapterDataset) -------------------------------------------

    def check(self, data_list: list[dict], pipeline: list[dict], ann_file: str) -> None:
        """Give every record its ``cache_file``, or stop with one line."""
        if not osp.isfile(self.manifest_path):
            raise DatasetError(
                f'no embedding cache at {self.folder}: build it with '
                '`python tools/cache_embeddings.py CONFIG`'
            )
        if self.damage is not None:
            raise DatasetError(
                f'{self.manifest_path}: the embedding cache manifest is damaged '
                f'({self.damage}); {_REBUILD} (its entries are kept)'
            )
        settings = settings_of(pipeline, self.manifest['settings']['dtype'])
        if settings != self.manifest['settings']:
            raise DatasetError(
                f'the embedding cache {self.folder} was built for another data '
                'pipeline (resize, crop, CLIP size or flip differ): rebuild it '
                'with tools/cache_embeddings.py'
            )
        missing, damaged = [], []
        for index, info in enumerate(data_list):
            key = self.entry_key(
                info['img_path'],
                info['text'],
                settings,
                self.manifest['fingerprint'],
                info.get('bucket'),
                cached_references(info),
            )
            info['cache_file'] = self.entry_path(key)
            if not osp.isfile(info['cache_file']):
                missing.append((index, info['img_path']))
                continue
            problem = self.entry_problem(info['cache_file'], info.get('bucket'))
            if problem is not None:
                damaged.append((index, info['cache_file'], problem))
        if damaged:
            index, path, problem = damaged[0]
            raise DatasetError(
                f'{ann_file}: {len(damaged)} of {len(data_list)} entries of the '
                f'embedding cache {self.folder} are damaged (first: record '
                f'{index}, {path}: {problem}); {_REBUILD} (it rewrites them)'
            )
        if missing:
            index, path = missing[0]
            raise DatasetError(
                f'{ann_file}: the embedding cache {self.folder} lacks '
                f'{len(missing)} of {len(data_list)} records (new or changed '
                f'images or captions; first: record {index}, {path}): rebuild '
                'it with tools/cache_embeddings.py'
            )

    def load(self, info: dict, reference: int = 0) -> dict:
        """A packed sample (``inputs``, ``data_samples``) from its entry,
        with the features of its ``reference``-th reference."""
        from safetensors.torch import load_file

        try:
            tensors = load_file(info['cache_file'])
        except Exception as err:  # safetensors' own error types
            raise DatasetError(
                f'{info["cache_file"]}: damaged embedding cache entry '
                f'({type(err).__name__}: {err}); {_REBUILD}'
            ) from None
        flipped = self.manifest['settings']['flip'] > np.random.rand()
        inputs = {}
        for key, value in tensors.items():
            if key.endswith('_flipped'):
                continue
            if flipped and f'{key}_flipped' in tensors:
                value = tensors[f'{key}_flipped']
            inputs[key] = value
        return dict(
            inputs=pick_reference_features(inputs, reference),
            data_samples=dict(
                img_path=info['img_path'],
                sample_idx=info['sample_idx'],
                cache_fingerprint=self.manifest['fingerprint'],
            ),
        )
