"""insightface's detector and ArcFace embedder, as the official FaceID code
runs them (``FaceAnalysis(name='buffalo_l')``, ``prepare(det_size=(640,
640))``, ``normed_embedding``, ``norm_crop(image_size=224)``)."""

import glob
import os.path as osp

import numpy as np
from PIL import Image

from ..errors import ModelSourceError, UserError
from ..registry import FACE_EMBEDDERS
from .face_embedder import CROP_SIZE, EMBEDDING_DIM, DetectedFace, FaceEmbedder

__all__ = ['InsightFaceEmbedder']


@FACE_EMBEDDERS.register_module()
class InsightFaceEmbedder(FaceEmbedder):
    """insightface ``FaceAnalysis``: SCRFD detection with five landmarks,
    ArcFace embeddings.

    Args:
        name: Model pack (``buffalo_l``: the official FaceID code's) or a
            folder holding its ``.onnx`` files.
        root: insightface's root; packs are in ``<root>/models/<name>``.
        det_size: Side of the square the detector sees (640 as the
            official code).
        det_thresh: Detection score threshold.
        providers: onnxruntime execution providers.
        ctx_id: insightface's device index (-1: CPU).
    """

    def __init__(
        self,
        name: str = 'buffalo_l',
        root: str = '~/.insightface',
        det_size: int = 640,
        det_thresh: float = 0.5,
        providers: tuple[str, ...] = ('CPUExecutionProvider',),
        ctx_id: int = -1,
    ) -> None:
        try:
            from insightface.app import FaceAnalysis
            from insightface.utils import face_align
        except ImportError as err:
            raise UserError(
                f'InsightFaceEmbedder needs insightface and onnxruntime '
                f'({err.name} is not installed): pip install .[faces]'
            ) from None
        folder = osp.expanduser(name)
        if not osp.isdir(folder):
            folder = osp.join(osp.expanduser(root), 'models', name)
        if not glob.glob(osp.join(folder, '*.onnx')):
            # insightface would download the pack: name where it must go
            raise ModelSourceError(
                f'{folder}: no insightface model files (*.onnx) of {name!r}; '
                f'unpack {name}.zip there, or set face_embedder name= to the '
                'folder that holds them'
            )
        self._align = face_align
        self.app = FaceAnalysis(
            name=folder, root=root, providers=list(providers)
        )  # a folder: loaded as it is, nothing downloaded
        if 'recognition' not in self.app.models:
            raise ModelSourceError(
                f'{folder}: the pack has no recognition (ArcFace) model; '
                f'found {sorted(self.app.models)}'
            )
        self.app.prepare(
            ctx_id=ctx_id, det_thresh=det_thresh, det_size=(det_size, det_size)
        )

    def faces(self, image: Image.Image) -> list[DetectedFace]:
        bgr = np.ascontiguousarray(np.asarray(image.convert('RGB'))[:, :, ::-1])
        found = []
        for face in self.app.get(bgr):
            embedding = np.asarray(face.normed_embedding, dtype=np.float32)
            if embedding.shape != (EMBEDDING_DIM,):
                raise ModelSourceError(
                    f'{self.app.model_dir}: embeddings of '
                    f'shape {embedding.shape}, the FaceID adapters read '
                    f'({EMBEDDING_DIM},)'
                )
            crop = self._align.norm_crop(bgr, landmark=face.kps, image_size=CROP_SIZE)
            found.append(
                DetectedFace(
                    embedding=embedding,
                    crop=Image.fromarray(np.ascontiguousarray(crop[:, :, ::-1])),
                    bbox=tuple(float(v) for v in face.bbox[:4]),
                    score=float(face.det_score),
                )
            )
        return found
