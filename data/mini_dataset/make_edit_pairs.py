"""Write the FLUX.1 Kontext pairs of the mini dataset (``edit_pairs.json``,
``edits/``): each photo is the input image, the next photo is the reference,
and the target is the input recoloured with the reference's colours (each RGB
channel moved to the reference's mean and spread), 256 px, JPEG quality 85.

    python data/mini_dataset/make_edit_pairs.py
"""

import json
import os.path as osp

import numpy as np
from PIL import Image

HERE = osp.dirname(osp.abspath(__file__))


def recolour(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image`` with each channel's mean and std those of ``reference``."""
    out = (image - image.mean((0, 1))) / (image.std((0, 1)) + 1e-6)
    out = out * reference.std((0, 1)) + reference.mean((0, 1))
    return np.clip(out, 0, 255).round().astype(np.uint8)


def main() -> None:
    with open(osp.join(HERE, 'data.json')) as f:
        records = json.load(f)
    pairs = []
    for i, record in enumerate(records):
        reference = records[(i + 1) % len(records)]
        images = [
            np.asarray(
                Image.open(osp.join(HERE, r['image_file'])).convert('RGB'), np.float32
            )
            for r in (record, reference)
        ]
        name = osp.basename(record['image_file'])
        target = Image.fromarray(recolour(*images)).resize((256, 256), Image.LANCZOS)
        target.save(osp.join(HERE, 'edits', name), quality=85)
        pairs.append(
            dict(
                input_file=record['image_file'],
                image_file=f'edits/{name}',
                reference_file=reference['image_file'],
                text=record['text'] + ', in the colours of the reference',
            )
        )
    with open(osp.join(HERE, 'edit_pairs.json'), 'w') as f:
        f.write('[\n' + ',\n'.join('  ' + json.dumps(p) for p in pairs) + '\n]\n')


if __name__ == '__main__':
    main()
