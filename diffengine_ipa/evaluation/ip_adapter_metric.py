"""CLIP-based evaluation of an IP-Adapter as an MMEngine metric."""

import logging
import os.path as osp
from typing import Any

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..registry import METRICS
from . import report as report_lib
from .clip_judge import get_judge

__all__ = ['IPAdapterMetric']


@METRICS.register_module()
class IPAdapterMetric(BaseMetric):
    """Reference preservation (CLIP-I), prompt following (CLIP-T), their
    combined score and grade, and diversity across seeds.

    Reads the samples ``IPAdapter`` predicts (reference, prompt, scale, seed,
    generated image) and scores them with a CLIP model of its own.

    Args:
        clip_model: Hub id or folder of the judging ``CLIPModel``.
        out_dir: If set, write ``eval_report.json``, the generated images and
            one grid per seed there, and print a table.
        report_meta: Extra fields for the report (config, checkpoint, mode).
        device: Where the judge runs (default: CUDA if available).
        face_embedder: If set (e.g. ``dict(type='InsightFaceEmbedder')``,
            the embedder the face data was prepared with), also score face
            similarity: the cosine of the identity embeddings of the
            reference's face and the generated image's (largest faces); a
            generated image without a face is a miss (cosine 0, counted).
        **kwargs: ``collect_device``, ``prefix`` of :class:`BaseMetric`.

    Returns (from ``evaluate``): ``clip_i``, ``clip_t`` (mean cosines),
    ``reference_preservation``, ``prompt_following``, ``combined`` (percent)
    and ``diversity`` (when there are several seeds), with a face embedder
    also ``face_similarity`` and ``face_misses``, overall and per scale
    (``combined@1``, ...).
    """

    default_prefix = 'ipa'

    def __init__(
        self,
        clip_model: str = 'openai/clip-vit-large-patch14',
        out_dir: str | None = None,
        report_meta: dict | None = None,
        device: str | None = None,
        face_embedder: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        import torch

        self.clip_model = clip_model
        self.out_dir = out_dir
        self.report_meta = dict(report_meta or {}, clip_model=clip_model)
        self.face_embedder = face_embedder and dict(face_embedder)
        if self.face_embedder:
            self.report_meta['face_embedder'] = self.face_embedder
        self._reference_faces: dict = {}
        self.device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        self._images: list = []

    def process(self, data_batch: Any, data_samples: list[dict]) -> None:
        judge = get_judge(self.clip_model, self.device)
        references = judge.image_embeds([s['reference'] for s in data_samples])
        generated = judge.image_embeds([s['image'] for s in data_samples])
        prompts = judge.text_embeds([s['prompt'] for s in data_samples])
        for i, sample in enumerate(data_samples):
            self.results.append(
                dict(
                    case_id=sample['case_id'],
                    img_path=sample['img_path'],
                    prompt=sample['prompt'],
                    scale=sample['scale'],
                    seed=sample['seed'],
                    clip_i=float(references[i] @ generated[i]),
                    clip_t=float(generated[i] @ prompts[i]),
                    embedding=generated[i],
                    **self._face_scores(sample),
                )
            )
            if self.out_dir:
                self._images.append(sample['image'])

    def _face_scores(self, sample: dict) -> dict:
        """``face_similarity`` (None when the reference has no face) and
        ``face_found`` of one generated image, with a face embedder."""
        if not self.face_embedder:
            return {}
        from ..faces import get_face_embedder, largest_face

        embedder = get_face_embedder(self.face_embedder)
        key = sample['img_path']
        if key not in self._reference_faces:
            reference = largest_face(embedder.faces(sample['reference']))
            if reference is None:
                print_log(
                    f'{key}: no face in the reference; its images are left '
                    'out of face_similarity',
                    logger='current',
                    level=logging.WARNING,
                )
            self._reference_faces[key] = reference
        reference = self._reference_faces[key]
        face = largest_face(embedder.faces(sample['image']))
        if reference is None:
            return dict(face_similarity=None, face_found=face is not None)
        similarity = (
            0.0 if face is None else float(reference.embedding @ face.embedding)
        )
        return dict(face_similarity=similarity, face_found=face is not None)

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        if self.out_dir and len(self._images) == len(results):
            summary = report_lib.write_report(
                results, self._images, self.out_dir, self.report_meta
            )
            print_log('\n' + report_lib.format_table(summary), logger='current')
            print_log(
                f'evaluation report: {osp.join(self.out_dir, "eval_report.json")}',
                logger='current',
            )
        else:
            summary = report_lib.summarize(results, self.report_meta)
            if self.out_dir:
                print_log(
                    'images from other ranks are not saved; the report '
                    'is written without them',
                    logger='current',
                    level=logging.WARNING,
                )
        self._images = []
        metrics = _flat(summary['overall'])
        for scale, values in summary['per_scale'].items():
            metrics.update({f'{k}@{scale}': v for k, v in _flat(values).items()})
        return metrics


def _flat(values: dict) -> dict[str, float]:
    """The scalar scores MMEngine logs (grade and missing diversity left out)."""
    names = dict(
        clip_i='clip_i',
        clip_t='clip_t',
        reference_preservation_percent='reference_preservation',
        prompt_following_percent='prompt_following',
        combined_percent='combined',
        diversity='diversity',
        face_similarity='face_similarity',
        face_misses='face_misses',
    )
    return {
        short: values[long]
        for long, short in names.items()
        if values.get(long) is not None
    }
