"""Evaluation cases: a reference image, its caption and a prompt, generated at
each scale with each seed."""

import os.path as osp

from ..errors import DatasetError
from ..fileio import safe_file_name
from ..registry import DATASETS
from .ip_adapter_dataset import IPAdapterDataset, read_records

__all__ = ['IPAdapterEvalDataset']


@DATASETS.register_module()
class IPAdapterEvalDataset(IPAdapterDataset):
    """``data.json`` records plus ``"prompt"`` (and optional ``"id"``,
    ``"quick"``), expanded to one sample per case × scale × seed.

    A case's id (its ``"id"``, else its image file's name) names its output
    files, so it is made a safe file name (no path separators, no leading
    dots) and must be unique.

    Args:
        ann_file: The cases file (see ``data/eval_set/cases.json``).
        scales: Adapter scales to generate at.
        seeds: Seeds to generate with, per scale.
        quick: Keep only the cases marked ``"quick": true``.
        caption_as_prompt: Records of a training set as cases (a held-out
            split, or a second annotation file in any format the training
            dataset reads): the caption is the prompt, the reference (or the
            image itself) the image prompt.
        max_cases: Keep the first N cases.
        empty_prompt: Allow cases whose ``"prompt"`` is ``""`` (generation
            from the reference alone, as the shapes world's judge does).
        **kwargs: As for :class:`IPAdapterDataset`.
    """

    def __init__(
        self,
        ann_file: str,
        scales: tuple = (1.0,),
        seeds: tuple = (0,),
        quick: bool = False,
        caption_as_prompt: bool = False,
        max_cases: int | None = None,
        empty_prompt: bool = False,
        **kwargs,
    ) -> None:
        self.scales = tuple(float(s) for s in scales)
        self.seeds = tuple(int(s) for s in seeds)
        self.quick = quick
        self.caption_as_prompt, self.max_cases = caption_as_prompt, max_cases
        self.empty_prompt = empty_prompt
        super().__init__(ann_file=ann_file, **kwargs)

    def full_init(self) -> None:
        """Check the cases as training records, then expand them."""
        if self._fully_initialized:
            return
        super().full_init()
        samples, ids, kept = [], {}, 0
        for case in self._cases():
            prompt = case.get('prompt')
            if not isinstance(prompt, str) or not (prompt or self.empty_prompt):
                raise DatasetError(
                    f'{self.ann_file}: case {case["image_file"]}'
                    ' needs a non-empty "prompt" (or set '
                    'empty_prompt=True on the dataset)'
                )
            # The id names output files: made safe, and unique.
            case_id = safe_file_name(
                case.get('id') or osp.splitext(osp.basename(case['img_path']))[0]
            )
            if case_id in ids:
                raise DatasetError(
                    f'{self.ann_file}: cases {ids[case_id]} and '
                    f'{case["image_file"]} have the same id {case_id!r}, which '
                    'names their output files; give each case its own "id"'
                )
            ids[case_id] = case['image_file']
            if self.quick and not case.get('quick', False):
                continue
            if self.max_cases is not None and kept >= self.max_cases:
                break
            kept += 1
            for scale in self.scales:
                for seed in self.seeds:
                    samples.append(
                        dict(
                            case,
                            case_id=case_id,
                            scale=scale,
                            seed=seed,
                            sample_idx=len(samples),
                        )
                    )
        if not samples:
            raise DatasetError(
                f'{self.ann_file}: no evaluation cases'
                + (' marked "quick"' if self.quick else '')
            )
        self.samples = samples

    def _cases(self):
        """Each usable record as a case: with its own fields (a cases
        file), or with its caption as the prompt."""
        if self.caption_as_prompt:
            for i in range(len(self.index)):
                info = self.index.info(i)
                stem = osp.splitext(osp.basename(info['img_path']))[0]
                yield dict(
                    info,
                    prompt=info['text'],
                    image_file=info['img_path'],
                    id=f'{self.index.record_number(i):06d}_{stem}',
                    img_path=info.get('reference_paths', [info['img_path']])[0],
                )
            return
        records = read_records(self.ann_file)  # a few cases: their own fields
        for i in range(len(self.index)):
            yield dict(records[self.index.record_number(i)], **self.index.info(i))

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self.samples)

    def get_data_info(self, idx: int) -> dict:
        """The ``idx``-th case × scale × seed."""
        if not self._fully_initialized:
            self.full_init()
        return dict(self.samples[idx])
