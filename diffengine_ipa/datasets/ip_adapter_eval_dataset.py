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
        **kwargs: As for :class:`IPAdapterDataset`.
    """

    def __init__(self,
                 ann_file: str,
                 scales: tuple = (1.0, ),
                 seeds: tuple = (0, ),
                 quick: bool = False,
                 **kwargs) -> None:
        self.scales = tuple(float(s) for s in scales)
        self.seeds = tuple(int(s) for s in seeds)
        self.quick = quick
        super().__init__(ann_file=ann_file, **kwargs)

    def full_init(self) -> None:
        """Check the cases as training records, then expand them."""
        if self._fully_initialized:
            return
        super().full_init()
        records = read_records(self.ann_file)  # a few cases: their own fields
        samples, ids = [], {}
        for i in range(len(self.index)):
            case = dict(records[self.index.record_number(i)],
                        **self.index.info(i))
            if not isinstance(case.get('prompt'), str) or not case['prompt']:
                raise DatasetError(f'{self.ann_file}: case {case["image_file"]}'
                                   ' needs a non-empty "prompt"')
            # The id names output files: made safe, and unique.
            case_id = safe_file_name(case.get('id') or osp.splitext(
                osp.basename(case['img_path']))[0])
            if case_id in ids:
                raise DatasetError(
                    f'{self.ann_file}: cases {ids[case_id]} and '
                    f'{case["image_file"]} have the same id {case_id!r}, which '
                    'names their output files; give each case its own "id"')
            ids[case_id] = case['image_file']
            if self.quick and not case.get('quick', False):
                continue
            for scale in self.scales:
                for seed in self.seeds:
                    samples.append(dict(case, case_id=case_id, scale=scale,
                                        seed=seed, sample_idx=len(samples)))
        if not samples:
            raise DatasetError(f'{self.ann_file}: no evaluation cases'
                               + (' marked "quick"' if self.quick else ''))
        self.samples = samples

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self.samples)

    def get_data_info(self, idx: int) -> dict:
        """The ``idx``-th case × scale × seed."""
        if not self._fully_initialized:
            self.full_init()
        return dict(self.samples[idx])
