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
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..dtypes import to_dtype
from ..models.random_models.architectures import architecture_spec
from .memory_options import part_bytes

__all__ = ['StorageCounter', 'estimate_training_memory']


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
