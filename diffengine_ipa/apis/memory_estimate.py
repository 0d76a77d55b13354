"""How much accelerator memory a training step needs, computed without one.

The model is built from a registered architecture on the meta device; its
weights become *fake* tensors (PyTorch's ``FakeTensorMode``: shapes, dtypes
and strides, no data), and one real training step (forward, backward,
AdamW update) runs on them, with PyTorch's own kernels choosing what to
save for the backward pass. A dispatch mode counts every tensor storage the
step allocates and frees: the peak is the memory a device would need for
weights, gradients, optimizer state and activations (the allocator's
fragmentation and the CUDA context, ~0.5–1 GB, come on top).

Attention runs through the CPU's fused SDPA kernel here (flash attention
for CPUs, which keeps O(tokens) state per head, as cuDNN/flash attention
does on a GPU), so the activation figure is that of a fused-attention GPU
step. The text is encoded once beforehand, as an embedding cache would; the
frozen encoders' weights still count.
"""

import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..dtypes import to_dtype
from ..models.random_models.architectures import architecture_spec
from .memory_options import part_bytes

__all__ = ['StorageCounter', 'estimate_training_memory', 'card_rows', 'largest_batch']


class StorageCounter(TorchDispatchMode):
    """Counts the bytes of every live tensor storage, and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def add(self, tensor: torch.Tensor) -> None:
        """Count ``tensor``'s storage (once) until it is freed."""
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.live:
            return
        self.live[key] = storage.nbytes()
        self.current += self.live[key]
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.add(leaf)
        return out


def _fake_weights(
    model: torch.nn.Module, mode: Any, frozen_dtype: torch.dtype, keep_fp32: str
) -> None:
    """Replace meta parameters by fake CPU tensors (frozen ones in
    ``frozen_dtype``, except under ``keep_fp32``)."""
    from torch._subclasses.fake_tensor import FakeTensor

    cpu = torch.device('cpu')
    for prefix, module in model.named_modules():
        for name, param in list(module.named_parameters(recurse=False)):
            full = f'{prefix}.{name}' if prefix else name
            dtype = (
                param.dtype
                if param.requires_grad or full.startswith(keep_fp32)
                else frozen_dtype
            )
            meta = torch.empty(param.shape, dtype=dtype, device='meta')
            setattr(
                module,
                name,
                torch.nn.Parameter(
                    FakeTensor(mode, meta, cpu), requires_grad=param.requires_grad
                ),
            )


@contextlib.contextmanager
def _quiet_pipeline_checks() -> Iterator[None]:
    """The pipelines compare token ids to warn about truncation, which fake
    tensors cannot answer; the comparison is moot for an estimate."""
    equal = torch.equal
    torch.equal = lambda a, b: False
    try:
        yield
    finally:
        torch.equal = equal


def estimate_training_memory(
    architecture: str,
    batch: int,
    resolution: int | None = None,
    frozen_dtype: str = 'bf16',
    gradient_checkpointing: bool = True,
) -> dict[str, Any]:
    """The peak memory of one training step of ``architecture`` (with its
    paired image encoder, its family's published projection), in bytes.

    Args:
        architecture: A registered base architecture, e.g. ``flux1_dev``.
        batch: Images per step.
        resolution: Image side (default: the architecture's).
        frozen_dtype: Precision of the frozen weights (the step runs under
            autocast in it; the adapter and AdamW state stay fp32).
        gradient_checkpointing: Recompute the denoiser's blocks.

    Returns:
        ``peak_bytes``, ``weight_bytes`` (all parameters), ``trainable``
        (parameters), ``parts`` (see ``memory_options.part_bytes``), and the
        settings.
    """
    from accelerate import init_empty_weights
    from torch._subclasses.fake_tensor import FakeTensorMode

    from ..models import IPAdapter

    spec = architecture_spec(architecture)
    resolution = resolution or spec['resolution']
    cast = to_dtype(frozen_dtype)
    with init_empty_weights(include_buffers=False):
        model = IPAdapter(
            f'random:{architecture}',
            f'random:{spec["paired_encoder"]}',
            family=dict(type=spec['family'], **spec.get('family_settings', {})),
            image_projection=spec.get('projection'),
            gradient_checkpointing=gradient_checkpointing,
        )
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    keep = 'family.vae.' if model.family.vae.config.get('force_upcast') else '\0'
    _fake_weights(model, mode, cast, keep)
    model.train()
    autocast = torch.autocast('cpu', dtype=cast, enabled=cast != torch.float32)
    with mode, _quiet_pipeline_checks():
        side = model.image_encoder.image_size
        with torch.no_grad(), autocast:  # what an embedding cache holds
            mean, std = model.family.latent_distribution(
                torch.rand(batch, 3, resolution, resolution) * 2 - 1
            )
            inputs = dict(
                latent_mean=mean,
                latent_std=std,
                image_features=model.image_encoder(
                    torch.randn(batch, 3, side, side),
                    model.image_projection.image_features,
                ),
                time_ids=torch.tensor(
                    [[resolution, resolution, 0, 0, resolution, resolution]] * batch,
                    dtype=torch.float32,
                ),
                **model.family.encode_prompt(['a photo of a cat'] * batch),
            )
            model.empty_prompt_encodings()
            model.null_image_features()
        adapter = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(adapter, lr=1e-4)

        def step() -> None:
            with autocast:
                loss = model(inputs)['loss']
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        step()  # AdamW's state exists from the first step on
        counter = StorageCounter()
        for tensor in [
            *model.parameters(),
            *tree_leaves(optimizer.state_dict()['state']),
            *tree_leaves(inputs),
        ]:
            if isinstance(tensor, torch.Tensor):
                counter.add(tensor)
        with counter:
            step()
    return dict(
        architecture=architecture,
        batch=batch,
        resolution=resolution,
        frozen_dtype=frozen_dtype,
        gradient_checkpointing=gradient_checkpointing,
        peak_bytes=counter.peak,
        weight_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        trainable=sum(p.numel() for p in adapter),
        parts=part_bytes(model),
    )


def card_rows(frozen_dtype: str, on_rows: Callable[[list[dict]], None]) -> list[dict]:
    """The rows of ``tools/estimate_memory.py --cards``: every family's
    full-size architecture at its training resolution, batch 1 and 4, with
    and without gradient checkpointing, each under every memory option (see
    :func:`.memory_options.option_rows`); ``on_rows`` sees each step's rows
    as they come (16 fake-tensor steps)."""
    from ..models.families import FAMILIES
    from .memory_options import option_rows

    rows = []
    for entry in FAMILIES.values():
        resolution = architecture_spec(entry.architecture)['resolution']
        for batch in (1, 4):
            for checkpointing in (True, False):
                estimate = estimate_training_memory(
                    entry.architecture, batch, resolution, frozen_dtype, checkpointing
                )
                step = option_rows(estimate)
                on_rows(step)
                rows += step
    return rows


def largest_batch(rows: list[dict], budget: float) -> int | None:
    """The largest batch under ``budget`` bytes, by the linear fit
    peak = fixed + per-image · batch through the first two rows."""
    if len(rows) < 2:
        return None
    (b0, p0), (b1, p1) = [(r['batch'], r['peak_bytes']) for r in rows[:2]]
    per_image = (p1 - p0) / (b1 - b0)
    fixed = p0 - per_image * b0
    return int((budget - fixed) // per_image) if per_image > 0 else None
